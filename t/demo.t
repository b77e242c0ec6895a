# The demo of the README's first command (examples/demo/run), on free ports:
# the runner starts the stand-in MongoDB server with the sample data and
# clusterd with conf/clusterd.conf; the README's curl commands give what they
# promise; headless Chromium (Debian's chromium, through playwright-core,
# t/browser/demo.js) opens the page, sees documents, worker pids and the room,
# and shows a message published by a second browser context and an event
# POSTed to /socket.io/emit (a screenshot goes to t/artifacts/demo.png in the
# build tree). Then a Ctrl-C (SIGINT to the runner's process group) stops
# everything and frees the ports; and a kill -9 of the runner alone leaves a
# stand-in that exits by itself.
use strict;
use warnings;
use Test::More;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Clusterd qw(poll_until http_get json_decode);

my $TOP = $ENV{TOP_SRCDIR} or die "TOP_SRCDIR is not set (run under make check)\n";
my $BUILD = $ENV{TOP_BUILDDIR} // '.';
my $DEADLINE = $Clusterd::DEADLINE;
my $runner = "$TOP/examples/demo/run";
my $chromium = $ENV{CHROMIUM} // '/usr/bin/chromium';

# Missing tools fail loudly (./bootstrap --test installs them all).
system('node --version >/dev/null 2>&1') == 0 or die "node is not installed: t/demo.t needs it\n";
sub npm_dir {
    my ($pkg, $dir) = @_;
    my ($d) = grep { -d "$_/$pkg" } "$TOP/$dir/node_modules", split /:/, $ENV{NODE_PATH} // '';
    $d or die "$pkg is missing: run `npm ci --prefix $dir` (./bootstrap --test)\n";
    return $d;
}
npm_dir('bson', 't/mongo');
npm_dir('socket.io-client', 'examples/demo');
my $pw_dir = npm_dir('playwright-core', 't/browser');

my $tmp = tempdir('clusterd-demo-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @groups;     # process groups started here: killed at the end whatever happens
END { kill 'KILL', map { -$_ } @groups if @groups }

sub slurp { my ($f) = @_; open my $fh, '<', $f or return ''; local $/; my $t = <$fh>; $t // '' }

# Starts the runner in a process group of its own, as a shell starts a
# foreground job, on free ports; waits for clusterd's ready line.
sub start_demo {
    my ($name) = @_;
    my $log = "$tmp/$name.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open STDOUT, '>', $log or die;
        open STDERR, '>&', \*STDOUT or die;
        $ENV{DEMO_MONGO_PORT} = 0;
        $ENV{TMPDIR} = $tmp;
        exec $runner, '-w', '2', '-l', '127.0.0.1:0';
        die "exec $runner: $!";
    }
    push @groups, $pid;
    my $ready = poll_until($DEADLINE * 2, sub {
        my $t = slurp($log);
        return $t =~ /ready: generation 1,/ || !kill(0, $pid) || waitpid($pid, WNOHANG) == $pid;
    });
    my $text = slurp($log);
    my %d = (pid => $pid, log => $log, text => $text);
    ($d{port}) = $text =~ /listening on 127\.0\.0\.1:(\d+)/;
    ($d{mongo_port}) = $text =~ /wire-protocol server on 127\.0\.0\.1:(\d+)/;
    ok($ready && $text =~ /ready: generation 1,/ && $d{port} && $d{mongo_port},
        "$name: the runner starts the stand-in and clusterd") or diag $text;
    # The processes: the runner's children are the stand-in (node) and the master.
    for my $kid (Clusterd::children($pid)) {
        my $cmd = slurp("/proc/$kid/cmdline") =~ tr/\0/ /r;
        $d{mongo} = $kid if $cmd =~ m{t/mongo/server\.js};
        $d{master} = $kid if $cmd =~ m{clusterd -c};
    }
    $d{workers} = [ $d{master} ? Clusterd::children($d{master}) : () ];
    return \%d;
}

sub port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 2);
    return !$s;
}

sub gone { my @p = grep { defined } @_; return !grep { Clusterd::alive($_) } @p }

# ---------------------------------------------------------------- run 1
my $d = start_demo('run1');
like($d->{text}, qr{examples/demo/run: /mongo is served by a stand-in: t/mongo/server\.js, an in-memory MongoDB wire-protocol server .*because Debian ships no MongoDB; in production, point the route's uri at a real MongoDB},
    'the runner says plainly that /mongo is a stand-in, and why');
ok($d->{mongo} && $d->{master}, 'the stand-in and the master are the runner\'s children');
is(scalar @{ $d->{workers} }, 2, 'two workers (-w 2 passed through)');
my $port = $d->{port};

# ---- the README's commands, run as written but for the port ----
my $readme = slurp("$TOP/README.md");
my ($block) = $readme =~ /```sh\n(curl http:\/\/127\.0\.0\.1:8080\/dummy\n.*?)```/s;
ok($block, 'the README lists curl commands right under the two commands');
(my $joined = $block // '') =~ s/\\\n\s*/ /g;
my @cmds = grep { /^curl / } split /\n/, $joined;
my %want = (
    dummy => sub {
        my $j = json_decode($_[0]);
        $j && $j->{service} eq 'dummy' && grep { $_ == $j->{pid} } @{ $d->{workers} };
    },
    filter => sub {
        my $j = json_decode($_[0]) or return 0;
        my @docs = @{ $j->{documents} // [] };
        my @prices = map { $_->{price} } @docs;
        @docs == 3 && !grep({ $_->{category} ne 'kitchen' || $_->{price} >= 20 } @docs) &&
            "@prices" eq join(' ', sort { $a <=> $b } @prices);
    },
    byid => sub {
        my $j = json_decode($_[0]);
        $j && $j->{_id}{'$oid'} eq '65a0c0de0000000000000001' && $j->{name} eq 'Blue Mug';
    },
    emit => sub { $_[0] =~ /^\{"ok":true\}/ },
    healthz => sub { my $j = json_decode($_[0]); $j && $j->{status} eq 'ok' },
    metrics => sub { $_[0] =~ /^clusterd_requests_total\{service="readmongo",code="2xx"\} [1-9]/m },
);
my %seen;
for my $cmd (@cmds) {
    my $kind = $cmd =~ m{/dummy} ? 'dummy' : $cmd =~ m{/mongo/products -d} ? 'filter'
        : $cmd =~ m{/mongo/products/65a0c0de} ? 'byid' : $cmd =~ m{/emit} ? 'emit'
        : $cmd =~ m{/healthz} ? 'healthz' : $cmd =~ m{/metrics} ? 'metrics' : 'other';
    $seen{$kind}++;
    (my $run = $cmd) =~ s{http://127\.0\.0\.1:8080/}{http://127.0.0.1:$port/}g;
    $run =~ s/^curl /curl -sS --max-time $DEADLINE /;
    my $out = `$run 2>&1`;
    ok($? == 0 && $want{$kind} && $want{$kind}->($out), "README: $cmd") or diag "$run\n$out";
}
ok($seen{$_}, "the README has a $_ command") for qw(dummy filter byid emit healthz metrics);

# ---- every route, and the worker's pid on every reply ----
for my $path ('/dummy', '/mongo/orders?limit=1', '/mongo/orders/_count', '/', '/vendor/socket.io.min.js',
    '/healthz', '/metrics', '/nosuch') {
    my ($st, $h) = http_get($port, $path);
    my $pid = $h->{'x-worker-pid'} // '';
    ok(($st == 200 || ($path eq '/nosuch' && $st == 404)) && grep({ $_ eq $pid } @{ $d->{workers} }),
        "$path: $st, X-Worker-Pid names a worker ($pid)");
}
my ($st, $h, $body) = http_get($port, '/mongo/orders/_count');
is($body, '{"count":360}', 'the sample orders: 360');
($st, $h, $body) = http_get($port, '/mongo/products/_count');
is($body, '{"count":240}', 'the sample products: 240');
($st, $h, $body) = http_get($port, '/mongo/orders?limit=1&sort=%7B%22number%22%3A1%7D');
my $o = (json_decode($body) // {})->{documents}[0] // {};
ok(ref $o->{items} eq 'ARRAY' && $o->{items}[0]{product}{'$oid'} && $o->{customer}{city} &&
    $o->{placed}{'$date'}, 'an order: nested customer, an array of items naming products by ObjectId, a date');
($st, $h, $body) = http_get($port, '/');
ok($st == 200 && $h->{'content-type'} =~ m{^text/html} && $body =~ /<title>clusterd demo<\/title>/,
    '/: the demo page');
like($body, qr{<script src="vendor/socket\.io\.min\.js"></script>}, '... loading the Socket.IO client from /vendor');
($st, $h, $body) = http_get($port, '/vendor/socket.io.min.js');
ok($st == 200 && $h->{'content-type'} =~ /javascript/ && length($body) > 10000 && $body =~ /Socket\.IO/i,
    '/vendor/socket.io.min.js: the browser client of the npm package');
($st, $h, $body) = http_get($port, '/demo.js');
like($body, qr/transports: \['websocket'\]/, 'the page connects over WebSocket only');

# ---- the page in headless Chromium ----
SKIP: {
    ok(-x $chromium, "$chromium is installed (./bootstrap --test installs Debian's chromium)")
        or skip "no $chromium", 13;
    my $art = "$BUILD/t/artifacts";
    make_path($art);
    my $shot = "$art/demo.png";
    unlink $shot;
    local $ENV{NODE_PATH} = join ':', $pw_dir, $ENV{NODE_PATH} // ();
    my $timeout = $DEADLINE * 2;
    my $out = `timeout 180 node '$TOP/t/browser/demo.js' --url 'http://127.0.0.1:$port/' --screenshot '$shot' --chromium '$chromium' --timeout-ms ${timeout}000 2>&1`;
    my %ev;
    for (split /\n/, $out) {
        my $e = json_decode($_) or next;
        push @{ $ev{ $e->{ev} } }, $e;
    }
    ok(!$ev{error}, 'the browser went through every step')
        or diag "failed at: $ev{error}[0]{step}: $ev{error}[0]{message}\n$out";
    like($ev{title}[0]{text} // '', qr/clusterd demo/, 'Chromium opens the page');
    my $docs = $ev{docs}[0] // {};
    ok(($docs->{rows} // 0) > 0 && $docs->{first} =~ /\bkitchen\b/, "the page lists documents ($docs->{info})")
        or diag $out;
    ok(grep({ $_ eq ($docs->{pid} // '') } @{ $d->{workers} }), '... and names the worker that served them');
    ok(grep({ $_ eq ($ev{ping}[0]{pid} // '') } @{ $d->{workers} }), 'a ping names the worker that answered it');
    like($ev{byid}[0]{row} // '', qr/^65a0c0de0000000000000001\tSKU-0001\tBlue Mug\t/, 'get by id: the Blue Mug');
    is($ev{joined}[0]{state} // '', 'connected', 'the page connects to the real-time service');
    like($ev{joined}[0]{room} // '', qr/in room demo/, '... and joins the room demo');
    my $pub = $ev{published}[0]{text} // 'nothing';
    my ($from_tab) = grep { $_->{from} eq 'tab' } @{ $ev{received} // [] };
    like($from_tab->{text} // '', qr/\Q$pub\E/, 'a message published by a second browser context appears in the first');
    is($ev{emit}[0]{status} // 0, 200, 'POST /socket.io/emit: 200');
    my ($from_emit) = grep { $_->{from} eq 'emit' } @{ $ev{received} // [] };
    like($from_emit->{text} // '', qr{POST /socket\.io/emit.*hello from a back end}, '... and the event appears on the page');
    is_deeply($ev{errors}[0]{list} // ['none reported'], [], 'no error in the pages or their consoles');
    ok(-s $shot && slurp($shot) =~ /^\x89PNG/, "a screenshot: $shot");
}

# ---- Ctrl-C: SIGINT to the foreground process group ----
kill 'INT', -$d->{pid};
my $rc;
poll_until($DEADLINE, sub { my $r = waitpid($d->{pid}, WNOHANG); $rc = $? if $r == $d->{pid}; $r != 0 });
ok(defined $rc, 'Ctrl-C: the runner exits');
ok(poll_until($DEADLINE, sub { gone($d->{master}, @{ $d->{workers} }, $d->{mongo}) }),
    '... the master, the workers and the stand-in are gone');
ok(port_free($port) && port_free($d->{mongo_port}), '... and both ports are free');
my @left = glob "$tmp/clusterd-demo-*";
ok(!@left, '... and its temporary directory is removed') or diag "@left";
@groups = grep { $_ != $d->{pid} } @groups;
unlike(slurp($d->{log}), qr/ERROR: (?:Address|Leak|Undefined)Sanitizer|runtime error:/,
    'no sanitizer report in the log');

# ---------------------------------------------------------------- run 2: kill -9
my $d2 = start_demo('run2');
kill 'KILL', $d2->{pid};
waitpid($d2->{pid}, 0);
ok(poll_until($DEADLINE, sub { gone($d2->{mongo}) }),
    'kill -9 of the runner: the stand-in exits by itself (--exit-with-parent)');
ok(poll_until($DEADLINE, sub { port_free($d2->{mongo_port}) }), '... and frees its port');
# clusterd outlives a runner killed alone (a terminal's Ctrl-C reaches it too): stop it here.
kill 'TERM', $d2->{master} if $d2->{master};
ok(poll_until($DEADLINE, sub { gone($d2->{master}, @{ $d2->{workers} }) }), '... clusterd stops on SIGTERM');

done_testing;
