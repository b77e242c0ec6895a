# make install DESTDIR=... installs the binary, the man pages, the unit and
# the example config, and never overwrites an existing config. The unit
# passes systemd-analyze verify.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

my $build = $ENV{TOP_BUILDDIR};
my $dest = tempdir('clusterd-install-XXXXXX', TMPDIR => 1, CLEANUP => 1);
# A make inside make check: keep the outer make's flags out of it.
delete local @ENV{qw(MAKEFLAGS MAKELEVEL MFLAGS)};
sub install { system("make -s -C '$build' install DESTDIR='$dest' >/dev/null 2>&1") == 0 }
sub find_one { my ($re) = @_; my @f = grep { /$re/ } split /\n/, `find '$dest' -type f`; $f[0] }

ok(install(), 'make install DESTDIR works');
my $bin = find_one(qr{/sbin/clusterd$});
ok($bin && -x $bin, 'the binary in sbin');
ok(find_one(qr{/man8/clusterd\.8$}), 'clusterd(8)');
ok(find_one(qr{/man5/clusterd\.conf\.5$}), 'clusterd.conf(5)');
ok(find_one(qr{/lib/clusterd/readmongo\.so$}), 'the readmongo module in $(libdir)/clusterd');
my $conf = find_one(qr{/etc/clusterd/clusterd\.conf$});
ok($conf, 'the example config');
is(do { local (@ARGV, $/) = $conf; <> }, do { local (@ARGV, $/) = "$ENV{TOP_SRCDIR}/conf/production.conf"; <> },
    '... conf/production.conf, not the demo\'s');
my $unit = find_one(qr{/system/clusterd\.service$});
ok($unit, 'the systemd unit');

# An existing config survives a second install.
open my $fh, '>>', $conf or die;
print $fh "// edited by the operator\n";
close $fh;
ok(install(), 'install again');
like(do { local (@ARGV, $/) = $conf; <> }, qr/edited by the operator/, 'the edited config is kept');

SKIP: {
    skip 'no unit installed', 4 unless $unit;
    my $text = do { local (@ARGV, $/) = $unit; <> };
    like($text, qr/^Type=notify$/m, 'Type=notify');
    like($text, qr/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, 'ExecReload sends SIGHUP');
    like($text, qr/^KillSignal=SIGQUIT$/m, 'stop is graceful');
    skip 'no systemd-analyze', 1 unless -x '/usr/bin/systemd-analyze';
    # verify checks that ExecStart's binary exists: point it at the installed one.
    (my $local = $text) =~ s{(Exec\w*=)\S*/clusterd( -t)? -c \S+}{$1$bin$2 -c $ENV{TOP_SRCDIR}/conf/production.conf}g;
    my $dir = tempdir(CLEANUP => 1);
    open my $u, '>', "$dir/clusterd.service" or die;
    print $u $local;
    close $u;
    my $out = `systemd-analyze verify --man=no '$dir/clusterd.service' 2>&1`;
    ok($? == 0 && $out eq '', 'systemd-analyze verify passes with no warning') or diag $out;
}
done_testing;
