# No "started" with no one serving: -t catches what it can; a first
# generation that cannot get ready makes the master exit 1 with the worker's
# reason on stderr; a reloaded one that cannot is abandoned while the old
# one goes on serving.
use strict;
use warnings;
use Test::More;
use Clusterd qw(poll_until json_decode);

my $bin = $ENV{CLUSTERD};
my $dir = Clusterd->new->dir;
my $routes = '"routes":[{"prefix":"/dummy","service":"dummy"}]';

sub check_config {
    my ($json) = @_;
    open my $f, '>', "$dir/t.conf" or die;
    print $f $json;
    close $f;
    my $out = `$bin -t -c $dir/t.conf 2>&1`;
    return ($? >> 8, $out);
}

# 1. -t: what can be known before a worker runs.
for my $case (
    [ '"access_log":"/nonexistent/dir/a.log"', qr{access_log: cannot create /nonexistent/dir/a\.log: /nonexistent/dir: No such file}, 'an access log in a missing directory' ],
    [ '"error_log":"/nonexistent/e.log"', qr{error_log: cannot create /nonexistent/e\.log}, 'an error log in a missing directory' ],
    [ '"pid_file":"/proc/x/clusterd.pid"', qr{pid_file: cannot create}, 'a pid file where none can be made' ],
    [ qq{"access_log":"$dir"}, qr{access_log: \Q$dir\E is a directory}, 'an access log that is a directory' ],
    [ '"worker_rlimit_nofile":3', qr{worker_rlimit_nofile: 3 is too few}, 'worker_rlimit_nofile 3' ],
) {
    my ($rc, $out) = check_config(qq({"listen":["127.0.0.1:0"],$case->[0],$routes}));
    is($rc, 1, "-t refuses $case->[2]");
    like($out, qr{\Q$dir\E/t\.conf: }, '  ... naming the file');
    like($out, $case->[1], '  ... the key and the problem');
}

# 2. At start. -t accepts the config, but the workers cannot open the access
# log (t/inject.so makes open() of that path fail in the master's children:
# a directory the workers' user cannot reach, a full disk, a security
# policy). The error log is a file: the reason must reach stderr anyway.
my $inject = "$ENV{TOP_BUILDDIR}/t/inject.so";
die "$inject is missing (make check builds it)" unless -f $inject;
sub launch_injected {
    my ($c) = @_;
    local $ENV{LD_PRELOAD} = $inject;
    local $ENV{CLUSTERD_INJECT_EACCES} = 'unreachable.log';
    # an ASan build wants its runtime first; the preload is not instrumented
    local $ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'verify_asan_link_order=0';
    $c->launch;
}
{
    my $c = Clusterd->new;
    my ($alog, $elog) = ($c->dir . '/unreachable.log', $c->dir . '/error.log');
    $c->write_config({ access_log => $alog, error_log => $elog });
    my ($rc, $out) = check_config(Clusterd::slurp($c->conf));
    is($rc, 0, '-t accepts the config') or diag $out;
    launch_injected($c);
    my $status = $c->wait_exit(20);
    ok(defined $status, 'the master exits when its first generation cannot get ready');
    is(defined $status ? $status >> 8 : undef, 1, '  ... with status 1');
    my $stderr = $c->log_text;
    like($stderr, qr{cannot start: generation 1 cannot get ready: its worker for slot \d exited before it was ready: cannot open the access log \Q$alog\E: Permission denied},
        "  ... and the worker's reason on stderr, although error_log is a file");
    is(scalar(() = $stderr =~ /cannot start: generation/g), 1, '  ... once');
    like(Clusterd::slurp($elog), qr{cannot start: generation 1 cannot get ready}, '  ... and in the error log');
}

# 3. On reload: abandoned, and the old generation serves on.
{
    my $c = Clusterd->new;
    launch_injected($c);
    $c->wait_log(qr/ready: generation 1,/) or die "no start:\n" . $c->log_text;
    ($c->{port}) = $c->log_text =~ /listening on [\d.]+:(\d+)/;
    my ($st) = $c->get('/dummy');
    is($st, 200, 'generation 1 serves');
    my $from = $c->log_size;
    $c->write_config({ access_log => $c->dir . '/unreachable.log', listen => ["127.0.0.1:$c->{port}"] });
    $c->signal('HUP');
    ok($c->wait_log(qr/reload failed, keeping the current configuration: generation 2 cannot get ready, generation 1 goes on serving: its worker for slot \d exited before it was ready: cannot open the access log/, 20, $from),
        'a reload whose workers cannot get ready fails, saying why');
    my %gens;
    for (1 .. 20) {
        my ($s, undef, $b) = $c->get('/dummy');
        my $j = json_decode($b // '');
        $gens{$s == 200 && $j ? $j->{generation} : 'error'}++;
    }
    is_deeply(\%gens, { 1 => 20 }, 'generation 1 answers every request after it');
    ok(poll_until(10, sub { scalar($c->workers) == 2 }), '  ... with its two workers, no more');
    my $s = json_decode(`$bin -s status --json -p $c->{pid_file}` // '');
    is($s && $s->{master}{generation}, 1, 'generation 1 is the current one again');
    is($s && $s->{master}{last_reload}{result}, 'failed', 'status reports the failed reload');

    # A good config after that reloads as usual.
    $from = $c->log_size;
    $c->write_config({ listen => ["127.0.0.1:$c->{port}"] });
    $c->signal('HUP');
    ok($c->wait_log(qr/ready: generation 3,/, 20, $from), 'a good reload after it gets ready');
    my (undef, undef, $body) = $c->get('/dummy');
    is(json_decode($body // '{}')->{generation}, 3, '  ... and serves');
    is($c->stop('QUIT') >> 8, 0, 'master exits 0');
    is($c->sanitizer_report, '', 'no sanitizer report');
}
done_testing;
