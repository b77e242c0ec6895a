package WsRaw;
# A raw WebSocket client for tests: the handshake by hand, frames built
# byte by byte (so that it can send what no real client sends: unmasked
# frames, bad UTF-8, absurd lengths, fragmented control frames), and a
# reader of the server's frames with a deadline.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

# Opens a socket and sends the upgrade request. %o: path, headers (extra
# lines), key, rcvbuf (set before connecting). Returns the object; status()
# and headers() tell what the server answered.
sub connect {
    my ($class, $port, %o) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
    setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), $o{rcvbuf}) if $o{rcvbuf};
    $s->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'))) or die "connect: $!";
    $s->blocking(1);
    my $self = bless { s => $s, buf => '' }, $class;
    my $path = $o{path} // '/socket.io/?EIO=4&transport=websocket';
    my $key = $o{key} // 'dGhlIHNhbXBsZSBub25jZQ==';
    my $extra = $o{headers} // "Upgrade: websocket\r\nConnection: Upgrade\r\n" .
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: $key\r\n";
    syswrite $s, "GET $path HTTP/1.1\r\nHost: t\r\n$extra\r\n";
    $self->read_head($o{timeout} // 10);
    return $self;
}

sub sock { $_[0]{s} }
sub status { $_[0]{status} // 0 }
sub headers { $_[0]{headers} // {} }
sub body { $_[0]{body} // '' }

sub fill {
    my ($self, $deadline) = @_;
    my $sel = IO::Select->new($self->{s});
    my $left = $deadline - time;
    return 0 if $left <= 0 || !$sel->can_read($left);
    my $n = sysread($self->{s}, $self->{buf}, 65536, length $self->{buf});
    $self->{eof} = 1 unless $n;
    return $n ? 1 : 0;
}

sub read_head {
    my ($self, $secs) = @_;
    my $end = time + $secs;
    while ($self->{buf} !~ /\r\n\r\n/) { $self->fill($end) or return }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    ($self->{status}) = $head =~ m{^HTTP/1\.1 (\d{3})};
    my %h;
    for (split /\r\n/, $head) { $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/ }
    $self->{headers} = \%h;
    $self->{buf} = $rest;
    if ($self->{status} && $self->{status} != 101 && defined $h{'content-length'}) {
        while (length $self->{buf} < $h{'content-length'}) { $self->fill($end) or last }
        $self->{body} = substr($self->{buf}, 0, $h{'content-length'}, '');
    }
}

# A frame as a client sends it. %o: fin (1), opcode (1 text), mask (1),
# len (the length to claim, if not the payload's), rsv (0).
sub frame {
    my ($payload, %o) = @_;
    my $fin = $o{fin} // 1;
    my $op = $o{opcode} // 1;
    my $mask = $o{mask} // 1;
    my $len = $o{len} // length $payload;
    my $b = pack('C', ($fin ? 0x80 : 0) | (($o{rsv} // 0) << 4) | $op);
    my $m = $mask ? 0x80 : 0;
    if ($len < 126) { $b .= pack('C', $m | $len) }
    elsif ($len < 65536) { $b .= pack('Cn', $m | 126, $len) }
    else { $b .= pack('CQ>', $m | 127, $len) }
    if ($mask) {
        my $key = pack('N', 0x37fa213d);
        $b .= $key;
        my $k = $key x (int(length($payload) / 4) + 1);
        $payload = $payload ^ substr($k, 0, length $payload);
    }
    return $b . $payload;
}

sub send_raw { my ($self, $bytes) = @_; syswrite $self->{s}, $bytes }
sub send_text { my ($self, $t, %o) = @_; $self->send_raw(frame($t, %o)) }
sub send_binary { my ($self, $t) = @_; $self->send_raw(frame($t, opcode => 2)) }

# The next frame from the server: { opcode, payload, fin, code (a close's) },
# or undef at the deadline or at EOF (then eof() is true). Pings of
# Engine.IO ("2") are answered with "3" and skipped when autopong is set.
sub next_frame {
    my ($self, $secs) = @_;
    my $end = time + ($secs // 10);
    while (1) {
        my $f = $self->parse_one;
        if ($f) {
            if ($self->{autopong} && $f->{opcode} == 1 && $f->{payload} eq '2') {
                $self->send_text('3');
                next;
            }
            return $f;
        }
        return undef unless $self->fill($end);
    }
}

sub parse_one {
    my ($self) = @_;
    my $b = \$self->{buf};
    return undef if length $$b < 2;
    my ($b0, $b1) = unpack('CC', $$b);
    my $len = $b1 & 0x7f;
    my $off = 2;
    if ($len == 126) { return undef if length $$b < 4; $len = unpack('x2n', $$b); $off = 4 }
    elsif ($len == 127) { return undef if length $$b < 10; $len = unpack('x2Q>', $$b); $off = 10 }
    return undef if length $$b < $off + $len;
    my $f = { fin => $b0 >> 7, opcode => $b0 & 0x0f, masked => $b1 >> 7,
        payload => substr($$b, $off, $len) };
    substr($$b, 0, $off + $len, '');
    if ($f->{opcode} == 8) {
        ($f->{code}) = length $f->{payload} >= 2 ? unpack('n', $f->{payload}) : (0);
        $f->{reason} = length $f->{payload} > 2 ? substr($f->{payload}, 2) : '';
    }
    return $f;
}

# Reads until a close frame (its code, 0 if it has none) or EOF (-1); skips
# anything else.
# Returns undef at the deadline.
sub wait_close {
    my ($self, $secs) = @_;
    my $end = time + ($secs // 10);
    while (time < $end) {
        my $f = $self->next_frame($end - time);
        return $f->{code} if $f && $f->{opcode} == 8;
        return -1 if !$f && $self->{eof};
    }
    return undef;
}

# True once the server has closed the TCP connection (EOF or reset).
sub wait_eof {
    my ($self, $secs) = @_;
    my $end = time + ($secs // 10);
    while (time < $end) {
        $self->{buf} = '';
        return 1 if $self->{eof};
        $self->fill($end);
    }
    return $self->{eof} ? 1 : 0;
}

# Connects through Engine.IO and Socket.IO: the open packet, then CONNECT
# to nsp. Returns the open packet's JSON text.
sub open_session {
    my ($self, %o) = @_;
    my $open = $self->next_frame(10) or return undef;
    return undef unless $open->{payload} =~ /^0(\{.*\})$/;
    my $json = $1;
    return $json if $o{no_connect};
    $self->send_text('40' . (($o{nsp} // '/') eq '/' ? '' : "$o{nsp},"));
    my $c = $self->next_frame(10) or return undef;
    return undef unless $c->{payload} =~ /^40/;
    return $json;
}

sub close { close $_[0]{s} }

1;
