# readmongo against the in-memory MongoDB server (t/mongo/server.js):
# queries give exactly what the official Node.js driver gives, get by id and
# _count work, and every error answer carries its status, code and message.
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Clusterd qw(json_decode);
use Time::HiRes qw(time);
use MongoTest qw(oid date long double int32 uri_escape);

# ---- a few thousand documents of every type the issue names ----
my @cities = qw(paris oslo lima pune);
my @users = map { +{
    _id     => oid(sprintf '%08x%016x', 0x65000000 + $_, $_),
    name    => "user$_",
    age     => int32(18 + ($_ * 7) % 60),
    score   => double(($_ % 100) + 0.25),
    big     => long(5000000000 + $_ * 3),
    created => date(1600000000000 + $_ * 86400123),
    active  => ($_ % 2 ? JSON::PP::true : JSON::PP::false),
    nested  => { city => $cities[$_ % 4], zip => int32(1000 + $_ % 97),
                 tags => ['t' . $_ % 5, 'u' . $_ % 3], geo => { lat => double($_ / 8) } },
    ($_ % 10 == 0 ? (note => undef) : ()),
} } 0 .. 2999;
my @orders = ((map { +{ _id => "order-$_", total => double($_ * 1.5),
    items => [ { sku => "s$_", qty => int32($_ % 4 + 1) } ] } } 1 .. 50),
    { _id => 'a/b c', total => double(2.5) });

my $m = MongoTest->start(seed => { app => { users => \@users, orders => \@orders,
    secret => [ { _id => 's1' } ] } });
my %common = (service => 'readmongo', database => 'app', threads => 2,
    uri => $m->uri(serverSelectionTimeoutMS => 2000));
my $c = Clusterd->new(config => { routes => [
    { %common, prefix => '/mongo', collections => ['users', 'orders'],
      default_limit => 100, max_limit => 5000, max_time_ms => 10000 },
    { %common, prefix => '/slow', collections => ['*'], max_time_ms => 300 },
    # the read preference of a replica set goes to the driver, which applies it where it can
    { %common, prefix => '/rs', collections => ['users'],
      uri => $m->uri(serverSelectionTimeoutMS => 2000, readPreference => 'secondaryPreferred',
          maxStalenessSeconds => 120) },
] })->start;

# GET $path with the query parameters %q, URL-encoded: (status, headers, decoded body, raw body).
sub ours {
    my ($path, %q) = @_;
    my $qs = join '&', map { "$_=" . uri_escape($q{$_}) } sort keys %q;
    my ($st, $h, $body) = $c->get($path . ($qs ? "?$qs" : ''));
    return ($st, $h, json_decode($body), $body);
}

sub error_is {
    my ($name, $path, $status, $code, $re, %q) = @_;
    my ($st, undef, $j, $body) = ours($path, %q);
    is($st, $status, "$name: $status");
    is($j && $j->{error}{code}, $code, "$name: code $code");
    like($j && $j->{error}{message}, $re, "$name: message") or diag $body;
    is($j && $j->{error}{status}, $status, "$name: status in the body");
}

# ---- 1. the same documents as the official driver ----
sub same_as_node {
    my ($name, $coll, %q) = @_;
    my $getmores = $m->count_of('getMore');
    my ($st, $h, $j, $body) = ours("/mongo/$coll", %q);
    $getmores = $m->count_of('getMore') - $getmores;
    is($st, 200, "$name: 200") or diag $body;
    my $ref = $m->node_find('app', $coll, %q, limit => $q{limit} // 100);
    my $docs = $j && $j->{documents};
    is(ref $docs && scalar @$docs, scalar @$ref, "$name: " . scalar(@$ref) . ' documents');
    is_deeply($docs, $ref, "$name: the documents of the Node.js driver, in its order");
    return ($docs, $getmores, $h);
}

my ($docs, $getmores, $h) = same_as_node('no parameters', 'users');
is(scalar @$docs, 100, 'default_limit applies');
is_deeply($docs->[1]{_id}, { '$oid' => '650000010000000000000001' }, 'ObjectId as {"$oid"}');
is_deeply($docs->[1]{created}, { '$date' => '2020-09-14T12:26:40.123Z' }, 'date as {"$date": ISO-8601}');
is($docs->[1]{big}, 5000000003, 'int64 as a plain number (relaxed)');
is($docs->[1]{nested}{city}, 'oslo', 'nested documents stay nested');
ok(exists $docs->[0]{note} && !defined $docs->[0]{note}, 'null stays null');

($docs, $getmores, $h) = same_as_node('filter, projection, sort, limit, skip', 'users',
    filter => '{"age": {"$gte": 40}}', projection => '{"name": 1, "age": 1, "nested.city": 1}',
    sort => '{"age": -1, "_id": 1}', limit => 1200, skip => 7);
ok($getmores >= 1, "the result took getMore batches ($getmores)");
is($h->{'transfer-encoding'}, 'chunked', 'a big result is streamed with chunked encoding');
is_deeply([sort keys %{ $docs->[0] }], [qw(_id age name nested)], 'projection applied');

($docs, $getmores) = same_as_node('Extended JSON in the filter: dates and int64', 'users',
    filter => '{"created": {"$gte": {"$date": "2021-06-01T00:00:00Z"}}, '
        . '"big": {"$lt": {"$numberLong": "5000008000"}}}',
    sort => '{"big": -1}', limit => 5000);
ok($getmores >= 2, "several getMore batches ($getmores)");
same_as_node('nested fields, booleans, skip', 'users',
    filter => '{"nested.city": "oslo", "active": true}',
    projection => '{"_id": 0, "nested": 1, "score": 1}', sort => '{"score": -1, "name": 1}',
    skip => 3, limit => 50);
same_as_node('$or and arrays', 'users',
    filter => '{"$or": [{"age": 18}, {"nested.tags": "t3"}]}', limit => 1000);
same_as_node('string ids', 'orders', sort => '{"total": -1}', limit => 20, skip => 2);

my ($st, undef, $j) = ours('/mongo/users', limit => 0);
is_deeply([$st, $j], [200, { documents => [] }], 'limit=0 answers no documents');
my $hd;
($st, $hd) = $c->get('/mongo/users?limit=5', method => 'HEAD');
is($st, 200, 'HEAD is 200');
ok($hd->{'content-length'} > 0, 'HEAD carries the length');

# ---- 2. get by id, _count ----
my $oid = '650000070000000000000007';
($st, undef, $j) = ours("/mongo/users/$oid");
is($st, 200, 'get by ObjectId: 200');
is_deeply($j, $m->node_find('app', 'users', filter => qq({"_id": {"\$oid": "$oid"}}))->[0],
    'get by ObjectId: the document');
($st, undef, $j) = ours('/mongo/orders/order-7');
is($st, 200, 'get by string id: 200');
is_deeply($j, { _id => 'order-7', total => 10.5, items => [ { sku => 's7', qty => 4 } ] },
    'get by string id: the document');
($st, undef, $j) = ours('/mongo/orders/' . uri_escape('a/b c'));
is_deeply([$st, $j && $j->{_id}], [200, 'a/b c'], 'a percent-encoded id is decoded');
error_is('missing ObjectId', '/mongo/users/ffffffffffffffffffffffff', 404, 'not_found',
    qr/^no document with _id ObjectId\("ffffffffffffffffffffffff"\) in collection "users"$/);
error_is('missing string id', '/mongo/orders/order-999', 404, 'not_found',
    qr/^no document with _id "order-999" in collection "orders"$/);

my $filter = '{"nested.city": "lima", "age": {"$gt": 40}}';
($st, undef, $j) = ours('/mongo/users/_count', filter => $filter);
is($st, 200, '_count: 200');
is_deeply($j, { count => scalar @{ $m->node_find('app', 'users', filter => $filter, limit => 0) } },
    '_count with a filter counts what the driver finds');
($st, undef, $j) = ours('/mongo/users/_count');
is_deeply($j, { count => 3000 }, '_count without a filter');

# ---- 3. every error ----
error_is('filter not JSON', '/mongo/users', 400, 'bad_request',
    qr/^filter is not valid Extended JSON: .*position \d+/, filter => '{"age": 4x}');
error_is('projection not JSON', '/mongo/users', 400, 'bad_request',
    qr/^projection is not valid Extended JSON: the text ends at position 6, before the object is closed$/,
    projection => '{"a": ');
error_is('two filters', '/mongo/users', 400, 'bad_request',
    qr/^filter is not valid Extended JSON: more than one JSON object$/, filter => '{"a": 1} {"b": 2}');
error_is('trailing text', '/mongo/users', 400, 'bad_request',
    qr/^filter is not valid Extended JSON: .*position 9/, filter => '{"a": 1} x');
error_is('bad Extended JSON', '/mongo/users', 400, 'bad_request',
    qr/^filter is not valid Extended JSON: .*"zz".*OID/, filter => '{"_id": {"$oid": "zz"}}');
error_is('sort not an object', '/mongo/users', 400, 'bad_request',
    qr/^sort must be a JSON object/, sort => '[1]');
error_is('_count filter not JSON', '/mongo/users/_count', 400, 'bad_request',
    qr/^filter is not valid Extended JSON/, filter => '{nope');
error_is('filter not an object', '/mongo/users', 400, 'bad_request',
    qr/^filter must be a JSON object/, filter => 'nope');
for my $bad ('abc', '-1', '1.5', '', ' 5', '0x10', '99999999999999999999') {
    error_is("limit=$bad", '/mongo/users', 400, 'bad_request',
        qr/^limit must be a non-negative integer, got "\Q$bad\E"$/, limit => $bad);
}
error_is('skip=-3', '/mongo/users', 400, 'bad_request',
    qr/^skip must be a non-negative integer, got "-3"$/, skip => '-3');
error_is('limit over max_limit', '/mongo/users', 400, 'bad_request',
    qr/^limit 5001 is over max_limit \(5000\)$/, limit => 5001);
error_is('$where', '/mongo/users', 400, 'bad_request',
    qr/^filter uses \$where, which runs JavaScript on the server/,
    filter => '{"$where": "this.age > 3"}');
error_is('$function deep down', '/mongo/users', 400, 'bad_request',
    qr/^filter uses \$function, which runs JavaScript/,
    filter => '{"$and": [{"age": 1}, {"$expr": {"$eq": [{"$function": '
        . '{"body": "function() { return 1 }", "args": [], "lang": "js"}}, 1]}}]}');
error_is('$accumulator in a projection', '/mongo/users', 400, 'bad_request',
    qr/^projection uses \$accumulator/, projection => '{"a": {"x": [{"$accumulator": {}}]}}');
error_is('$where in sort', '/mongo/users', 400, 'bad_request', qr/^sort uses \$where/,
    sort => '{"a": {"$where": 1}}');
error_is('$where in _count', '/mongo/users/_count', 400, 'bad_request', qr/^filter uses \$where/,
    filter => '{"$where": "1"}');

error_is('collection not in the allowlist', '/mongo/secret', 404, 'not_found',
    qr/^collection "secret" is not served here$/);
error_is('get in a collection not in the allowlist', '/mongo/secret/s1', 404, 'not_found',
    qr/^collection "secret" is not served here$/);
error_is('invalid collection name', '/mongo/a%24b', 404, 'not_found',
    qr/^"a%24b" is not a valid collection name$/);
error_is('system collection', '/mongo/system.users', 404, 'not_found',
    qr/is not a valid collection name/);
error_is('no collection', '/mongo', 404, 'not_found', qr{^name a collection: /mongo/\{collection\}});
error_is('too deep', '/mongo/users/x/y', 404, 'not_found', qr/as deep as it goes/);
($st, undef, $j) = ours('/slow/secret/s1');
is_deeply([$st, $j], [200, { _id => 's1' }], '"*" allows every collection');

my ($st405, $h405, $b405) = $c->get('/mongo/users', method => 'POST', headers => "Content-Length: 0\r\n");
is($st405, 405, 'POST is 405');
is($h405->{allow}, 'GET, HEAD', '405 names the allowed methods');
like(json_decode($b405)->{error}{message}, qr/GET, HEAD/, '405 message');
is(json_decode($b405)->{error}{code}, 'method_not_allowed', '405 code');

$m->fault(error => 2, errmsg => 'injected failure');
error_is('server error on a list', '/mongo/users', 502, 'mongo_error',
    qr/^MongoDB answered with an error: injected failure \(code 2\)$/);
error_is('server error on a get', "/mongo/users/$oid", 502, 'mongo_error', qr/injected failure/);
error_is('server error on _count', '/mongo/users/_count', 502, 'mongo_error', qr/injected failure/);
$m->clear;

# A get retries a read once, as libmongoc's cursor does: after a network
# error or an error that says the node steps down or shuts down, and not
# after any other error.
{
    my $finds = sub { my $n0 = $m->count_of('find'); $_[0]->(); $m->count_of('find') - $n0 };
    is($finds->(sub {
        $m->fault(error => 2, errmsg => 'injected failure');
        error_is('a get: a plain server error', "/mongo/users/$oid", 502, 'mongo_error',
            qr/^MongoDB answered with an error: injected failure \(code 2\)$/);
        $m->clear }), 1, '  ... is not retried');
    is($finds->(sub {
        $m->fault(error => 189);
        error_is('a get: PrimarySteppedDown', "/mongo/users/$oid", 502, 'mongo_error',
            qr/^MongoDB answered with an error: injected error 189 \(code 189\)$/);
        $m->clear }), 2, '  ... is retried once');
    is($finds->(sub {
        $m->fault(drop => 1);
        ($st, undef, $j) = ours("/mongo/users/$oid");
        $m->clear }), 2, 'a get whose connection drops is retried once');
    is($st, 200, '  ... and answers');
}

# A server error after the stream began cannot change the status: the
# document list ends early and an "error" member says why.
$m->fault(error => 2, errmsg => 'getMore broke', cmds => 'getMore');
($st, $h, $j) = ours('/mongo/users', limit => 3000);
is($st, 200, 'error mid-stream: the status was already sent');
is($h->{'transfer-encoding'}, 'chunked', 'error mid-stream: it was a stream');
ok($j && @{ $j->{documents} } > 0 && @{ $j->{documents} } < 3000,
    'error mid-stream: the documents sent so far, and no more');
is($j && $j->{error}{code}, 'mongo_error', 'error mid-stream: the error member');
like($j && $j->{error}{message}, qr/getMore broke/, 'error mid-stream: its message');
$m->clear;

$m->fault(delay_ms => 3000);
error_is('past max_time_ms', '/slow/users', 504, 'timeout',
    qr/^the query ran past max_time_ms \(300 ms\)/);
error_is('_count past max_time_ms', '/slow/users/_count', 504, 'timeout', qr/max_time_ms \(300 ms\)/);
$m->clear;
# A server that stalls (it ignores maxTimeMS): the URI of /slow sets no
# socketTimeoutMS, so the driver gives up at max_time_ms and a second.
$m->fault(delay_ms => 8000, maxtime => 0);
{
    my $t0 = time;
    error_is('a stalled server', '/slow/users/1', 504, 'timeout',
        qr/^MongoDB did not answer within \d+ ms \(max_time_ms and a margin\)/);
    my $took = time - $t0;
    # the driver retries a read once: twice max_time_ms and the margin
    ok($took < 5, sprintf('  ... after %.1f s: 2 x (max_time_ms 0.3 s + 1 s), not 5 minutes', $took));
}
$m->clear;
($st) = ours('/slow/users');
is($st, 200, 'fine again once the server is fast');

# A URI with readPreference=secondaryPreferred and maxStalenessSeconds: a single
# server is read from all the same (the driver's server selection).
($st, undef, $j) = ours('/rs/users/650000070000000000000007');
is($st, 200, 'readPreference=secondaryPreferred&maxStalenessSeconds=120: served by the one server there is');
is($j && $j->{name}, 'user7', '... the document');

# QUIT: a graceful stop, so the worker's cleanup runs under the sanitizers.
is($c->stop('QUIT') >> 8, 0, 'master exits 0 after a graceful stop');
is($c->sanitizer_report, '', 'no sanitizer report');

# ---- route options are validated like every config key ----
my $t = Clusterd->new;
my %good = (prefix => '/m', service => 'readmongo', uri => 'mongodb://127.0.0.1:1/',
    database => 'app', collections => ['users']);
# clusterd -t on a config with one route: %good with %opts (undef: key left out).
sub check_route {
    my (%opts) = @_;
    my %r = (%good, %opts);
    delete $r{$_} for grep { !defined $r{$_} } keys %r;
    $t->write_config({ routes => [ \%r ] });
    my $out = `$ENV{CLUSTERD} -t -c @{[ $t->conf ]} 2>&1`;
    chomp $out;
    return $out;
}
is(check_route(), 'ok', 'a good route');
is(check_route(collections => ['*'], default_limit => 10, max_limit => 10, max_time_ms => 1,
    threads => 64, queue_limit => 1), 'ok', 'every option at its bounds');
# A replica set behind several clusterd hosts: the URI's options go to the driver as they are.
my $rs = 'mongodb://reader:s%40cret@127.0.0.1:27017,127.0.0.1:27018,127.0.0.1:27019/?replicaSet=rs0';
is(check_route(uri => "$rs&readPreference=secondaryPreferred&maxStalenessSeconds=120"), 'ok',
    'a replica set, secondaryPreferred, maxStalenessSeconds: accepted, and nothing else printed');
is(check_route(uri => "$rs&readPreference=nearest&readPreferenceTags=dc:east&readPreferenceTags=&localThresholdMS=30"
    . '&maxStalenessSeconds=-1&heartbeatFrequencyMS=20000&retryReads=true'), 'ok', '... tags, nearest, and the rest');
is(check_route(uri => "$rs&readPreference=secondary&maxStalenessSeconds=100&heartbeatFrequencyMS=90000"), 'ok',
    '... maxStalenessSeconds at heartbeatFrequencyMS + 10 s');
for my $case (
    [ { uri => undef }, 'routes[0].uri: required key is missing' ],
    [ { uri => 'http://x/' }, qr/routes\[0\]\.uri: \S/ ],
    [ { uri => "$rs&readPrefrence=secondary" }, 'routes[0].uri: unknown option "readPrefrence"' ],
    [ { uri => "$rs&readPreference=secondaryPrefered" },
      'routes[0].uri: Unsupported readPreference value [readPreference=secondaryPrefered]' ],
    [ { uri => "$rs&readPreference=secondary&maxStalenessSeconds=abc" },
      'routes[0].uri: Unsupported value for "maxstalenessseconds": "abc"' ],
    [ { uri => "$rs&readPreference=secondary&maxStalenessSeconds=30" }, 'routes[0].uri: maxStalenessSeconds=30 '
      . 'is below 90, the least a replica set accepts (90 s, and heartbeatFrequencyMS + 10 s)' ],
    [ { uri => "$rs&readPreference=secondary&maxStalenessSeconds=90&heartbeatFrequencyMS=90000" },
      'routes[0].uri: maxStalenessSeconds=90 is below 100, the least a replica set accepts (90 s, and '
      . 'heartbeatFrequencyMS + 10 s)' ],
    [ { uri => "$rs&maxStalenessSeconds=120" },
      'routes[0].uri: maxStalenessSeconds needs a readPreference other than primary' ],
    [ { uri => "$rs&readPreference=primary&readPreferenceTags=dc:east" },
      'routes[0].uri: readPreferenceTags needs a readPreference other than primary' ],
    [ { uri => 'mongodb://127.0.0.1:27017/?replicaSet=&readPreference=secondary' },
      'routes[0].uri: Value for URI option "replicaset" cannot be empty string' ],
    [ { database => undef }, 'routes[0].database: required key is missing' ],
    [ { database => 'a.b' }, 'routes[0].database: "a.b" is not a valid database name' ],
    [ { collections => undef }, 'routes[0].collections: required key is missing' ],
    [ { collections => 'users' }, 'routes[0].collections: expected a non-empty array of collection names ("*" allows all)' ],
    [ { collections => [] }, 'routes[0].collections: expected a non-empty array of collection names ("*" allows all)' ],
    [ { collections => ['ok', 'bad$'] }, 'routes[0].collections[1]: "bad$" is not a valid collection name' ],
    [ { collections => [1] }, 'routes[0].collections[0]: expected a string, got int' ],
    [ { default_limit => 2000 }, 'routes[0].default_limit: 2000 is over max_limit (1000)' ],
    [ { max_limit => 0 }, 'routes[0].max_limit: 0 is out of range (1 to 1000000000)' ],
    [ { max_time_ms => 0 }, 'routes[0].max_time_ms: 0 is out of range (1 to 3600000)' ],
    [ { threads => 65 }, 'routes[0].threads: 65 is out of range (1 to 64)' ],
    [ { queue_limit => 'x' }, 'routes[0].queue_limit: expected an integer, got string' ],
    [ { get_batch => 0 }, 'routes[0].get_batch: 0 is out of range (1 to 1000)' ],
    [ { get_batch => 1001 }, 'routes[0].get_batch: 1001 is out of range (1 to 1000)' ],
    [ { colections => ['users'] }, 'routes[0].colections: unknown key' ],
) {
    my ($opts, $want) = @$case;
    my $out = check_route(%$opts);
    my $name = JSON::PP->new->canonical->allow_nonref->encode($opts);
    if (ref $want) {
        like($out, qr/^clusterd: \Q@{[ $t->conf ]}\E: $want/, "route option $name");
    } else {
        is($out, 'clusterd: ' . $t->conf . ": $want", "route option $name");
    }
}
done_testing;
