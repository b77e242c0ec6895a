package SioDrive;
# Drives the official socket.io-client through t/sio/drive.js: one JSON
# command per line in, one JSON event per line out. expect() waits (with a
# deadline) for the first event that matches and keeps the others, so that
# nothing arrives "too early" to be seen.
use strict;
use warnings;
use IPC::Open2;
use IO::Select;
use JSON::PP;
use Time::HiRes qw(time);

my $json = JSON::PP->new->canonical->allow_nonref;
our $DIR = ($ENV{TOP_SRCDIR} // '.') . '/t/sio';
sub DIR { $DIR }

sub check_deps {
    system('node --version >/dev/null 2>&1') == 0
        or die "node is not installed: the socketio tests need it\n";
    grep { -d "$_/socket.io-client" } "$DIR/node_modules", split /:/, $ENV{NODE_PATH} // ''
        or die "$DIR/node_modules is missing: run `npm ci --prefix t/sio` first\n";
}

sub new {
    my ($class, %o) = @_;
    check_deps();
    local $ENV{NODE_PATH} = join ':', "$DIR/node_modules", $ENV{NODE_PATH} // ();
    my ($out, $in);
    my $pid = open2($out, $in, 'node', "$DIR/drive.js", '--lifetime', $o{lifetime} // 300);
    my $self = bless { pid => $pid, out => $out, in => $in, buf => '', events => [], seq => 0 }, $class;
    $self->expect(sub { $_[0]{ev} eq 'ready' }, 20) or die "drive.js did not start\n";
    return $self;
}

# Sends a command; returns its seq.
sub cmd {
    my ($self, %c) = @_;
    $c{seq} //= ++$self->{seq};
    my $fh = $self->{in};
    print $fh $json->encode(\%c), "\n";
    $fh->flush;
    return $c{seq};
}

sub read_lines {
    my ($self, $secs) = @_;
    my $sel = IO::Select->new($self->{out});
    return 0 unless $sel->can_read($secs > 0 ? $secs : 0);
    my $n = sysread($self->{out}, $self->{buf}, 1 << 20, length $self->{buf});
    return 0 unless $n;
    while ($self->{buf} =~ s/^([^\n]*)\n//) {
        my $e = eval { $json->decode($1) } // { ev => 'unparsed', line => $1 };
        push @{ $self->{events} }, $e;
    }
    return 1;
}

# The first kept or new event for which $match returns true (removed from
# the kept ones), or undef after $secs.
sub expect {
    my ($self, $match, $secs) = @_;
    my $end = time + ($secs // 15);
    while (1) {
        for my $i (0 .. $#{ $self->{events} }) {
            my $e = $self->{events}[$i];
            if ($match->($e)) {
                splice @{ $self->{events} }, $i, 1;
                return $e;
            }
        }
        my $left = $end - time;
        return undef if $left <= 0;
        $self->read_lines($left);
    }
}

# A command and the answer that carries its seq (and, if given, that ev).
sub call {
    my ($self, %c) = @_;
    my $secs = delete $c{deadline} // 30;
    my $ev = delete $c{want};
    my $seq = $self->cmd(%c);
    return $self->expect(sub { ($_[0]{seq} // -1) == $seq && (!$ev || $_[0]{ev} eq $ev) }, $secs);
}

# Events already received that match, removed from the kept ones.
sub take {
    my ($self, $match) = @_;
    while (IO::Select->new($self->{out})->can_read(0)) { last unless $self->read_lines(0) }
    my (@hit, @keep);
    push @{ $match->($_) ? \@hit : \@keep }, $_ for @{ $self->{events} };
    $self->{events} = \@keep;
    return @hit;
}

sub close {
    my ($self) = @_;
    return unless $self->{pid};
    eval { $self->cmd(cmd => 'exit') };
    close $self->{in};
    my $end = time + 5;
    while (time < $end) { last if waitpid($self->{pid}, 1) == $self->{pid}; Time::HiRes::sleep(0.02) }
    kill 'KILL', $self->{pid} if kill 0, $self->{pid};
    waitpid($self->{pid}, 0);
    delete $self->{pid};
}

sub DESTROY { $_[0]->close }

1;
