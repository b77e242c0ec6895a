#!/usr/bin/env node
'use strict';
/*
 * Drives Debian's Chromium, headless, through the demo page (t/demo.t):
 *
 *   node demo.js --url http://127.0.0.1:PORT/ --screenshot FILE [--chromium PATH]
 *
 * Tab A opens the page and waits for the documents, a ping and the room;
 * tab B (a second browser context: its own cookies and connections) publishes
 * a message, then a back end POSTs /socket.io/emit; tab A must show both.
 * Tab A's screenshot goes to FILE. Prints one JSON object per line of what
 * it saw ({"ev": ...}); a step that fails prints {"ev":"error",...} and
 * exits 1. Every wait has a deadline; none is a sleep.
 */
const http = require('http');
const { chromium } = require('playwright-core');

const opt = { url: null, screenshot: null, chromium: '/usr/bin/chromium', timeout: 20000 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i], v = process.argv[++i];
  if (a === '--url') opt.url = v;
  else if (a === '--screenshot') opt.screenshot = v;
  else if (a === '--chromium') opt.chromium = v;
  else if (a === '--timeout-ms') opt.timeout = Number(v);
  else { process.stderr.write(`unknown argument ${a}\n`); process.exit(2); }
}
if (!opt.url || !opt.screenshot) { process.stderr.write('--url and --screenshot are required\n'); process.exit(2); }

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let step = 'launch';

function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

// Waits for the page's element to hold text matching re; returns that text.
async function textOf(page, selector, re) {
  const loc = page.locator(selector).filter({ hasText: re }).first();
  await loc.waitFor({ timeout: opt.timeout });
  return loc.textContent();
}

async function main() {
  const args = ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-quic',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  // A local page of our own: no sandbox, which needs user namespaces that
  // neither root nor an unprivileged container may have.
  args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: opt.chromium, headless: true, args, timeout: opt.timeout });
  say({ ev: 'browser', version: browser.version() });
  const errors = [];
  const open = async (name) => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name} console: ${m.text()}`); });
    page.setDefaultTimeout(opt.timeout);
    await page.goto(opt.url);
    return page;
  };

  step = 'tab A: the page';
  const a = await open('A');
  say({ ev: 'title', text: await a.title() });

  step = 'tab A: documents';
  await a.locator('#docs tbody tr').first().waitFor();
  const info = await textOf(a, '#docs-info', /\d+ documents?/);
  say({ ev: 'docs', info, rows: await a.locator('#docs tbody tr').count(),
    pid: await textOf(a, '#docs-pid', /^\d+$/), first: await a.locator('#docs tbody tr').first().innerText(),
    url: await a.locator('#docs-url').textContent() });

  step = 'tab A: ping';
  say({ ev: 'ping', pid: await textOf(a, '#pings li b.pid', /^\d+$/) });

  step = 'tab A: get by id';
  await a.getByRole('button', { name: /^By id/ }).click();
  await a.locator('#docs-url').filter({ hasText: '/mongo/products/65a0c0de0000000000000001' }).waitFor();
  await textOf(a, '#docs-info', /^1 document,/);
  say({ ev: 'byid', row: await a.locator('#docs tbody tr').first().innerText(),
    pid: await textOf(a, '#docs-pid', /^\d+$/) });

  step = 'tab A: the room';
  await a.locator('#live-panel[data-joined="yes"]').waitFor();
  say({ ev: 'joined', state: await a.locator('#rt-state').textContent(), room: await a.locator('#rt-room').textContent() });

  step = 'tab B: publish';
  const b = await open('B');
  await b.locator('#live-panel[data-joined="yes"]').waitFor();
  const text = `hello from tab B ${process.pid}`;
  await b.locator('#msg').fill(text);
  await b.locator('#send').click();
  await b.locator('#events li.mine').filter({ hasText: text }).waitFor();
  say({ ev: 'published', text });

  step = 'tab A: the message from tab B';
  const got = await textOf(a, '#events li.other', text);
  say({ ev: 'received', from: 'tab', text: got });

  step = 'POST /socket.io/emit';
  const hello = `hello from a back end ${process.pid}`;
  const r = await post(new URL('/socket.io/emit', opt.url), { room: 'demo', event: 'chat', data: hello });
  say({ ev: 'emit', status: r.status, body: r.body });

  step = 'tab A: the emitted event';
  const got2 = await textOf(a, '#events li.backend', hello);
  say({ ev: 'received', from: 'emit', text: got2 });

  step = 'tab A: a preset query again, for the screenshot';
  await a.getByRole('button', { name: 'Kitchen under 20' }).click();
  await a.locator('#docs-url').filter({ hasText: 'kitchen' }).waitFor();
  await textOf(a, '#docs-info', /\d+ documents/);

  step = 'screenshot';
  await a.screenshot({ path: opt.screenshot, fullPage: true });
  say({ ev: 'screenshot', path: opt.screenshot });
  say({ ev: 'errors', list: errors });
  await browser.close();
}

main().then(() => process.exit(0), (e) => {
  say({ ev: 'error', step, message: String(e && e.message || e).split('\n')[0] });
  process.exit(1);
});
