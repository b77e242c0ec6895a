# Error log to a file with time, level, pid and role; the access log in both
# formats; SIGUSR1 and -s reopen after a rename lose nothing.
use strict;
use warnings;
use Test::More;
use Clusterd qw(poll_until json_decode);

my $c = Clusterd->new;
my $dir = $c->dir;
my $cfg = { error_log => "$dir/error.log", access_log => "$dir/access.log",
    access_log_format => 'json', log_level => 'debug' };
$c->write_config($cfg);
# start() waits on its own log (stderr): the master writes there before the
# error log opens, so wait on the error log instead.
$c->{log} = "$dir/error.log";
$c->start;

my $err = $c->log_text;
like($err, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} \[info\] \d+ master: clusterd /m,
    'error log lines carry time, level, pid and role');
like($err, qr/^\S+ \[debug\] \d+ worker slot [01]: serving, generation 1$/m,
    'workers log with their slot; log_level debug lets debug through');

my ($st) = $c->get('/dummy?x=1');
is($st, 200, 'a request');
$c->get('/nowhere');
my $line = poll_until(10, sub { my $t = slurp("$dir/access.log"); $t =~ m{(.*/nowhere.*)} ? $1 : undef });
my $j = json_decode($line);
ok($j, 'json access log lines are JSON') or diag $line;
is($j->{status}, 404, 'status');
is($j->{method}, 'GET', 'method');
is($j->{path}, '/nowhere', 'path');
is($j->{service}, undef, 'no service for an unrouted path');
ok($j->{bytes} > 0, 'bytes');
like($j->{duration_us} // '', qr/^\d+$/, 'duration in whole microseconds');
is($j->{client}, '127.0.0.1', 'client address');
ok($j->{pid} > 0 && grep({ $_ == $j->{pid} } $c->workers), 'worker pid');
like($j->{time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time');
my ($d) = grep { m{/dummy\?x=1} } split /\n/, slurp("$dir/access.log");
is(json_decode($d)->{service}, 'dummy', 'the service is named');
# The duration covers the whole request: an answer delayed by 300 ms took at
# least 300,000 us (and, on any box, less than the client's deadline).
my ($dst) = $c->get('/dummy/delay?ms=300');
is($dst, 200, 'a request delayed by 300 ms');
my $dline = poll_until(10, sub { my $t = slurp("$dir/access.log"); $t =~ m{^(.*/dummy/delay.*)$}m ? $1 : undef });
my $dus = (json_decode($dline // '') || {})->{duration_us} // -1;
ok($dus >= 300000 && $dus < $Clusterd::DEADLINE * 1e6, "its duration_us is 300000 or more ($dus)");

# Rotation under load: rename both logs, SIGUSR1, new lines go to new files;
# nothing is lost and no line is cut.
my $stop = "$dir/stop";
my @clients = map { [ Clusterd::client_loop($c->port, '/dummy', $stop, "$dir/client$_"), "$dir/client$_" ] } 1 .. 2;
poll_until(10, sub { -s "$dir/access.log" > 2000 });
rename "$dir/access.log", "$dir/access.log.1" or die;
rename "$dir/error.log", "$dir/error.log.1" or die;
$c->{log} = "$dir/error.log.1";
$c->signal('USR1');
ok(poll_until(10, sub { -s "$dir/access.log" }), 'SIGUSR1: the access log is reopened under its name');
ok(poll_until(10, sub { -s "$dir/error.log" }), 'and the error log');
# Both workers must have switched: wait for lines from each in the new file.
my $gets = 0;
ok(poll_until(15, sub {
    $c->get('/dummy');      # a new connection: the kernel picks either worker
    $gets++;
    my %pids = map { (json_decode($_) || {})->{pid} // 0 => 1 } split /\n/, slurp("$dir/access.log");
    delete $pids{0};
    keys %pids >= 2;
}), 'both workers write to the new access log');
open my $fh, '>', $stop or die;
close $fh;
my $total = 0;
$total += Clusterd::client_results(@$_)->{ok} for @clients;
# Every request is a line in one of the two files, and every line is whole.
my @lines = map { split /\n/, slurp($_) } "$dir/access.log.1", "$dir/access.log";
my @bad = grep { !json_decode($_) } @lines;
is(scalar @bad, 0, 'no line is cut or interleaved') or diag $bad[0];
my $dummy_lines = grep { m{"path":"/dummy"} } @lines;
is($dummy_lines, $total + $gets, "every one of the $total client requests is logged once");
like(slurp("$dir/error.log"), qr/reopened the log files/, 'the master says so in the new error log');

# -s reopen does the same through the pid file.
rename "$dir/access.log", "$dir/access.log.2" or die;
system($ENV{CLUSTERD}, '-c', $c->conf, '-p', "$dir/clusterd.pid", '-s', 'reopen') == 0
    or die 'clusterd -s reopen failed';
# The workers reopen when the master's message reaches them: keep asking.
ok(poll_until(10, sub { $c->get('/dummy'); -s "$dir/access.log" }), '-s reopen reopens the access log');

# combined format
$c->write_config({ %$cfg, access_log_format => 'combined' });
my $from = -s "$dir/error.log";
$c->{log} = "$dir/error.log";
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 2/, 15, $from), 'reloaded with the combined format');
$c->get('/dummy/delay?ms=1');
my $comb = poll_until(10, sub { my $t = slurp("$dir/access.log"); $t =~ m{^(.*delay\?ms=1.*)$}m ? $1 : undef });
like($comb, qr{^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /dummy/delay\?ms=1 HTTP/1\.1" 200 \d+ "-" "-" \d+us dummy \d+$},
    'combined format: client, time, request, status, bytes, duration, service, pid');

is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is(sanitizer("$dir/error.log") . sanitizer("$dir/error.log.1"), '', 'no sanitizer report');
done_testing;

sub slurp { open my $f, '<', $_[0] or return ''; local $/; my $t = <$f>; $t // '' }
sub sanitizer { my $t = slurp($_[0]); $t =~ /(ERROR: \w+Sanitizer.*|runtime error:.*)/ ? $1 : '' }
