# Started as root with "user" and "group", the workers drop to them and
# cannot get root back; the master stays root.
use strict;
use warnings;
use Test::More;
use Clusterd qw(poll_until);

plan skip_all => 'needs root (CI runs as root)' if $> != 0;
my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
my $ggid = getgrnam('nogroup');
plan skip_all => 'no user nobody / group nogroup' unless defined $uid && defined $ggid;

sub ids {
    my $pid = shift;
    open my $f, '<', "/proc/$pid/status" or return;
    my %s = map { /^(\w+):\s*(.*)$/ ? ($1, $2) : () } <$f>;
    return { uid => [split /\s+/, $s{Uid}], gid => [split /\s+/, $s{Gid}],
        groups => [split /\s+/, $s{Groups} // ''] };
}

my $c = Clusterd->new(config => { user => 'nobody', group => 'nogroup',
    access_log => '/dev/null' });
# The temp dir must be readable by the workers for nothing; logs go to stderr.
$c->start;
my @w = $c->workers;
is(scalar @w, 2, 'two workers');
for my $pid (@w) {
    my $id = ids($pid);
    is_deeply($id->{uid}, [($uid) x 4], "worker $pid: real, effective, saved and fs uid are nobody");
    is_deeply($id->{gid}, [($ggid) x 4], "worker $pid: all gids are nogroup");
    ok(!grep({ $_ == 0 } @{ $id->{groups} }), "worker $pid: no supplementary root group");
}
my $m = ids($c->pid);
is($m->{uid}[1], 0, 'the master stays root');
my ($st) = $c->get('/dummy');
is($st, 200, 'the workers serve');
# A reload (which binds as root) still works, and its workers drop too.
$c->write_config({ user => 'nobody', group => 'nogroup', access_log => '/dev/null',
    listen => ['127.0.0.1:0'] });
my $from = $c->log_size;
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 2/, 15, $from), 'reload works');
ok(poll_until(10, sub { my @n = $c->workers; @n == 2 && !grep({ my $x = $_; grep { $_ == $x } @w } @n) }),
    'new workers replaced the old');
is(ids(($c->workers)[0])->{uid}[1], $uid, 'new workers dropped to nobody too');

# Killing a worker that changed uid needs the master's root (CAP_KILL).
my $from2 = $c->log_size;
$c->signal('QUIT');
is($c->wait_exit(20), 0, 'graceful stop of unprivileged workers');
is($c->sanitizer_report, '', 'no sanitizer report');

# A user that does not exist is a config error.
my $d = Clusterd->new(config => { user => 'no-such-user-xyz' });
my $out = `$ENV{CLUSTERD} -t -c @{[$d->conf]} 2>&1`;
like($out, qr/: user: no such user "no-such-user-xyz"/, 'unknown user is a config error');
done_testing;
