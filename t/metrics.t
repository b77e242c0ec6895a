# GET /metrics: the whole cluster's figures in Prometheus text format
# 0.0.4, from any worker; counters are exact and survive the workers that
# made them (kill -9 included); the output parses with the official Python
# client's parser.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until json_decode);

my $PY = '/usr/bin/python3';
my $parser_ok = system("$PY -c 'import prometheus_client' 2>/dev/null") == 0;
ok($parser_ok, 'python3-prometheus-client is installed') or diag 'run ./bootstrap --test';

# A MongoDB that is not there: readmongo answers 503 fast, and counts it.
my $dead = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
my $dead_port = $dead->sockport;
close $dead;
my $c = Clusterd->new(config => { heartbeat_interval_ms => 100, routes => [
    { prefix => '/dummy', service => 'dummy' },
    { prefix => '/metrics', service => 'metrics' },
    { prefix => '/mongo', service => 'readmongo', database => 'app', collections => ['*'],
      uri => "mongodb://127.0.0.1:$dead_port/?serverSelectionTimeoutMS=200&connectTimeoutMS=200" },
] })->start;

my $scrapes = 0;
sub scrape {
    $scrapes++;
    my ($st, $h, $body) = $c->get('/metrics');
    return ($st, $h, $body);
}
# name{labels} => value, from the text (the parser below checks the format itself)
sub samples {
    my ($text) = @_;
    my %v;
    for (split /\n/, $text) {
        next if /^#/;
        $v{$1} = $2 if /^(\S+) (\S+)$/;
    }
    return \%v;
}

my ($dummy, $notfound, $bytes, %pids) = (37, 11, 0);
for (1 .. $dummy) {
    my ($st, undef, $body) = $c->get('/dummy');
    $bytes += length $body if $st == 200;
    $pids{$1} = 1 if $body =~ /"pid":(\d+)/;
}
$c->get('/nowhere') for 1 .. $notfound;
is(scalar keys %pids, 2, 'both workers served some of the requests');
$c->get('/mongo/things') for 1 .. 3;

my ($st, $h, $text) = scrape();
is($st, 200, 'GET /metrics: 200');
is($h->{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8', 'the 0.0.4 content type');
my $v = samples($text);
is($v->{'clusterd_requests_total{service="dummy",code="2xx"}'}, $dummy, "$dummy dummy requests, 2xx");
is($v->{'clusterd_requests_total{service="none",code="4xx"}'}, $notfound, "$notfound unrouted, 4xx");
is($v->{'clusterd_requests_total{service="readmongo",code="5xx"}'}, 3, '3 readmongo, 5xx');
is($v->{'clusterd_request_duration_seconds_count{service="dummy"}'}, $dummy, 'the histogram counts them');
is($v->{'clusterd_request_duration_seconds_bucket{service="dummy",le="+Inf"}'}, $dummy, '... +Inf is the count');
is($v->{'clusterd_response_bytes_total{service="dummy"}'}, $bytes, "response bytes: $bytes");
is($v->{'clusterd_workers'}, 2, 'two workers');
is($v->{'clusterd_build_info{version="0.1.0"}'}, 1, 'build info');
ok(poll_until(10, sub { samples((scrape())[2])->{'clusterd_readmongo_errors_total{route="/mongo",kind="mongo_unavailable"}'} == 3 }),
    'readmongo errors by kind, from its heartbeat') or diag $text;
like($text, qr/^clusterd_readmongo_queue_depth\{route="\/mongo"\} 0$/m, 'readmongo queue depth');
like($text, qr/^clusterd_worker_rss_bytes\{slot="0"\} [1-9]\d+$/m, 'RSS of slot 0');
like($text, qr/^clusterd_worker_start_time_seconds\{slot="1"\} 1\d{9}$/m, 'start time of slot 1');

# A worker killed: what it counted stays, and the crash is counted.
my @workers = $c->workers;
my $from = $c->log_size;
kill 'KILL', $workers[0];
ok($c->wait_log(qr/worker \d+ ready: slot \d, generation 1/, 10, $from), 'a replacement is ready');
ok(poll_until(10, sub { $c->workers == 2 }), 'two workers again');
($st, $h, $text) = scrape();
$v = samples($text);
is($v->{'clusterd_requests_total{service="dummy",code="2xx"}'}, $dummy, 'after kill -9: the dummy count is exact');
is($v->{'clusterd_requests_total{service="none",code="4xx"}'}, $notfound, '... the 404 count too');
is($v->{'clusterd_response_bytes_total{service="dummy"}'}, $bytes, '... and the bytes');
is($v->{'clusterd_readmongo_errors_total{route="/mongo",kind="mongo_unavailable"}'}, 3,
    "... and the service's counters");
is($v->{'clusterd_worker_restarts_total{reason="crash"}'}, 1, 'one restart for a crash');
is($v->{'clusterd_requests_total{service="metrics",code="2xx"}'}, $scrapes - 1,
    'every scrape before this one is counted too');

# Reloads, good and bad.
$from = $c->log_size;
$c->write_config('{ "listen": [ ');
$c->signal('HUP');
$c->wait_log(qr/reload failed/, 10, $from);
$c->write_config({ heartbeat_interval_ms => 100, routes => [
    { prefix => '/dummy', service => 'dummy' }, { prefix => '/metrics', service => 'metrics' } ] });
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 2/, 15, $from), 'reloaded');
ok(poll_until(10, sub { $c->workers == 2 }), 'the old generation is gone');
$v = samples((scrape())[2]);
is($v->{'clusterd_reloads_total{result="ok"}'}, 1, 'one good reload');
is($v->{'clusterd_reloads_total{result="failed"}'}, 1, 'one failed');
is($v->{'clusterd_worker_restarts_total{reason="reload"}'}, 2, 'two workers retired by it');
is($v->{'clusterd_requests_total{service="dummy",code="2xx"}'}, $dummy, 'counters survive the reload');
is($v->{'clusterd_readmongo_errors_total{route="/mongo",kind="mongo_unavailable"}'}, 3,
    "... a removed route's too");

SKIP: {
    skip 'no prometheus_client', 3 unless $parser_ok;
    my $f = $c->dir . '/metrics.txt';
    open my $fh, '>', $f or die;
    print $fh scalar((scrape())[2]);
    close $fh;
    my $out = `$PY - '$f' 2>&1 <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
for f in sorted(fams): print(f, fams[f].type, len(fams[f].samples))
PY
`;
    is($?, 0, 'the official parser reads it') or diag $out;
    my %fam = map { /^(\S+) (\S+)/ ? ($1 => $2) : () } split /\n/, $out;
    my %want = (clusterd_requests => 'counter', clusterd_request_duration_seconds => 'histogram',
        clusterd_connections => 'gauge', clusterd_requests_in_flight => 'gauge',
        clusterd_response_bytes => 'counter', clusterd_worker_restarts => 'counter',
        clusterd_reloads => 'counter', clusterd_workers => 'gauge',
        clusterd_worker_rss_bytes => 'gauge', clusterd_worker_start_time_seconds => 'gauge',
        clusterd_readmongo_errors => 'counter', clusterd_build_info => 'gauge');
    is_deeply({ map { $_ => $fam{$_} } keys %want }, \%want, 'every family, with its type');
    ok(!grep({ !/^clusterd_/ } keys %fam), 'all named clusterd_*');
}
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
