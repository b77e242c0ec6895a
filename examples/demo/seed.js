#!/usr/bin/env node
'use strict';
/*
 * The demo's sample database, made the same every time (a seeded
 * pseudo-random generator, fixed dates and ObjectIds), so that the README's
 * URLs always find the same documents:
 *
 *   node examples/demo/seed.js > seed.json
 *
 * writes {"shop": {"products": [...], "orders": [...]}} in canonical MongoDB
 * Extended JSON, the seed format of t/mongo/server.js: 240 products and
 * 360 orders, with nested objects, arrays, dates, doubles and ObjectIds
 * (each order's items name their products by _id).
 *
 * Fixed points the README and t/demo.t rely on: the first product is
 * {"_id": ObjectId("65a0c0de0000000000000001"), "sku": "SKU-0001",
 *  "name": "Blue Mug", "category": "kitchen"}; ObjectIds are
 * 65a0c0de + 16 hex digits of the index (products from 1, orders from 10001).
 */

// mulberry32: a small seeded generator; the same seed, the same sequence.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(20261203);
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
// Prices in quarters: exact in binary, so a double prints as it was written.
const money = (lo, hi) => Math.round((lo + rand() * (hi - lo)) * 4) / 4;

const oid = (n) => ({ $oid: '65a0c0de' + n.toString(16).padStart(16, '0') });
const date = (ms) => ({ $date: { $numberLong: String(ms) } });
const int32 = (n) => ({ $numberInt: String(n) });
const dbl = (x) => ({ $numberDouble: String(x) });
const DAY = 86400000;
const EPOCH = Date.UTC(2025, 0, 1);          // every date is in 2025 or 2026

const colours = ['Blue', 'Red', 'Green', 'Black', 'White', 'Yellow', 'Grey', 'Orange'];
const kinds = {
  kitchen: ['Mug', 'Teapot', 'Bowl', 'Plate', 'Kettle', 'Pan'],
  office: ['Notebook', 'Pen', 'Stapler', 'Desk Lamp', 'Folder', 'Chair'],
  books: ['Cookbook', 'Novel', 'Atlas', 'Dictionary', 'Poetry', 'Guide'],
  garden: ['Watering Can', 'Trowel', 'Planter', 'Hose', 'Gloves', 'Bench'],
  toys: ['Kite', 'Puzzle', 'Ball', 'Robot', 'Yo-yo', 'Train'],
};
const categories = Object.keys(kinds);
const materials = ['ceramic', 'steel', 'wood', 'paper', 'plastic', 'glass', 'cotton'];
const suppliers = [
  { name: 'Nordlys AS', country: 'NO' }, { name: 'Atelier Roux', country: 'FR' },
  { name: 'Kato & Sons', country: 'JP' }, { name: 'Verde Ltda', country: 'BR' },
  { name: 'Hollis Works', country: 'GB' }, { name: 'Baltic Craft', country: 'LT' },
];
const people = ['Ada', 'Grace', 'Linus', 'Ken', 'Barbara', 'Dennis', 'Margaret', 'Edsger',
  'Frances', 'Niklaus', 'Radia', 'Donald', 'Sophie', 'Tim', 'Hedy', 'Alan'];
const cities = [['Oslo', 'NO'], ['Lyon', 'FR'], ['Osaka', 'JP'], ['Recife', 'BR'],
  ['Leeds', 'GB'], ['Vilnius', 'LT'], ['Graz', 'AT'], ['Porto', 'PT']];
const statuses = ['placed', 'paid', 'shipped', 'delivered', 'delivered', 'cancelled'];

const products = [];
for (let i = 1; i <= 240; i++) {
  // The first product is the README's get by id: a blue kitchen mug.
  const category = i === 1 ? 'kitchen' : pick(categories);
  const colour = i === 1 ? 'Blue' : pick(colours);
  const kind = i === 1 ? 'Mug' : pick(kinds[category]);
  const added = EPOCH + int(0, 540) * DAY + int(0, DAY / 1000 - 1) * 1000;
  const ratings = [];
  for (let r = int(0, 4); r > 0; r--)
    ratings.push({ stars: int32(int(1, 5)), by: pick(people), at: date(added + int(1, 200) * DAY) });
  const tags = [colour.toLowerCase(), pick(materials)];
  if (rand() < 0.3) tags.push('sale');
  products.push({
    _id: oid(i),
    sku: 'SKU-' + String(i).padStart(4, '0'),
    name: `${colour} ${kind}`,
    category,
    price: dbl(i === 1 ? 12.5 : money(3, 120)),
    stock: int32(rand() < 0.1 ? 0 : int(1, 250)),
    tags,
    dims: { w_cm: int32(int(5, 80)), h_cm: int32(int(2, 60)), weight_g: int32(int(50, 9000)) },
    supplier: pick(suppliers),
    added: date(added),
    ratings,
  });
}

const orders = [];
for (let i = 1; i <= 360; i++) {
  const placed = EPOCH + int(30, 560) * DAY + int(0, DAY / 1000 - 1) * 1000;
  const [city, country] = pick(cities);
  const items = [];
  let total = 0;
  for (let k = int(1, 4); k > 0; k--) {
    const n = int(1, products.length), p = products[n - 1], qty = int(1, 3);
    const price = Number(p.price.$numberDouble);
    total += qty * price;
    items.push({ product: oid(n), sku: p.sku, name: p.name, qty: int32(qty), price: dbl(price) });
  }
  const status = pick(statuses);
  const order = {
    _id: oid(10000 + i),
    number: int32(100000 + i),
    customer: { name: pick(people), city, country },
    items,
    total: dbl(Math.round(total * 100) / 100),
    status,
    placed: date(placed),
  };
  if (status === 'shipped' || status === 'delivered')
    order.shipped = date(placed + int(1, 5) * DAY);
  orders.push(order);
}

process.stdout.write(JSON.stringify({ shop: { products, orders } }) + '\n');
