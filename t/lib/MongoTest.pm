package MongoTest;
# Test helpers for readmongo: the in-memory MongoDB server of t/mongo
# (server.js) on ephemeral ports, its control API, seed files, and the
# official Node.js driver (t/mongo/query.js) as the reference for results.
#
# The server and the driver need node and `npm ci --prefix t/mongo` (or the
# packages in NODE_PATH); a test without them fails loudly rather than skip.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Select;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time);
use Clusterd qw(http_get json_decode);

our @EXPORT_OK = qw(oid date long double int32 uri_escape rss_kb);

my $TOP = $ENV{TOP_SRCDIR} or die "TOP_SRCDIR is not set (run under make check)\n";
my $DIR = "$TOP/t/mongo";
my $json = JSON::PP->new->canonical;

# Extended JSON values for seeds (canonical form: types survive the trip).
sub oid    { { '$oid' => $_[0] } }
sub date   { { '$date' => { '$numberLong' => "$_[0]" } } }
sub long   { { '$numberLong' => "$_[0]" } }
sub double { { '$numberDouble' => "$_[0]" } }
sub int32  { { '$numberInt' => "$_[0]" } }

sub uri_escape {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9\-_.~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

*rss_kb = \&Clusterd::rss_kb;

sub check_deps {
    system('node --version >/dev/null 2>&1') == 0
        or die "node is not installed: the readmongo tests need it\n";
    # NODE_PATH: make distcheck's tree has no node_modules of its own.
    grep { -d "$_/mongodb" } "$DIR/node_modules", split /:/, $ENV{NODE_PATH} // ''
        or die "$DIR/node_modules is missing: run `npm ci --prefix t/mongo` first\n";
}

# Writes { db => { coll => [docs] } } as a seed file; a doc is a hashref or
# an Extended JSON string already encoded (faster for big seeds).
sub write_seed {
    my ($path, $dbs) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh '{';
    my $first_db = 1;
    for my $db (sort keys %$dbs) {
        print $fh ($first_db ? '' : ','), $json->encode($db), ':{';
        $first_db = 0;
        my $first_coll = 1;
        for my $coll (sort keys %{ $dbs->{$db} }) {
            print $fh ($first_coll ? '' : ','), $json->encode($coll), ':[';
            $first_coll = 0;
            my $n = 0;
            for my $doc (@{ $dbs->{$db}{$coll} }) {
                print $fh ($n++ ? ',' : ''), ref $doc ? $json->encode($doc) : $doc;
            }
            print $fh ']';
        }
        print $fh '}';
    }
    print $fh "}\n";
    close $fh or die "$path: $!";
}

# Starts server.js on port 0 and waits for its ready line.
# seed => { db => { coll => [docs] } }, or seed_file => path.
sub start {
    my ($class, %o) = @_;
    check_deps();
    my $dir = tempdir('mongo-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $seed = $o{seed_file};
    if ($o{seed}) {
        $seed = "$dir/seed.json";
        write_seed($seed, $o{seed});
    }
    my @cmd = ('node', "$DIR/server.js", '--port', 0, '--control-port', 0);
    push @cmd, '--seed', $seed if $seed;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $r;
        open STDOUT, '>&', $w or die;
        exec @cmd or die "exec node: $!";
    }
    close $w;
    my $self = bless { pid => $pid, owner => $$, out => $r, dir => $dir }, $class;
    my ($line, $sel, $end) = ('', IO::Select->new($r), time + ($o{timeout} // 120));
    while ($line !~ /\n/) {
        my $left = $end - time;
        die "mongo-test-server did not start in time\n" if $left <= 0 || !$sel->can_read($left);
        sysread($r, $line, 4096, length $line) or die "mongo-test-server exited before it was ready\n";
    }
    $line =~ /^mongo-test-server ready port=(\d+) control=(\d+)/
        or die "unexpected line from mongo-test-server: $line";
    @$self{qw(port control)} = ($1, $2);
    return $self;
}

sub port { $_[0]{port} }
sub pid { $_[0]{pid} }

# A URI for readmongo's config; extra options like serverSelectionTimeoutMS.
sub uri {
    my ($self, %opt) = @_;
    my $q = join '&', map { "$_=$opt{$_}" } sort keys %opt;
    return "mongodb://127.0.0.1:$self->{port}/" . ($q ? "?$q" : '');
}

# GET on the control port: the decoded answer (dies unless ok).
sub control {
    my ($self, $path) = @_;
    my ($st, undef, $body) = http_get($self->{control}, $path);
    my $j = json_decode($body);
    die "mongo control $path: $st $body\n" unless $st == 200 && $j && $j->{ok};
    return $j;
}

sub fault { my ($self, %p) = @_; $self->control('/fault?' . join '&', map { "$_=" . uri_escape($p{$_}) } sort keys %p) }
sub clear { $_[0]->control('/clear') }
sub stats { $_[0]->control('/stats') }
# How many times the server ran command $name so far.
sub count_of { my ($self, $name) = @_; return $self->stats->{commands}{$name} // 0 }

# The same find through the official Node.js driver: an arrayref of
# documents (decoded relaxed Extended JSON). %q: filter, projection, sort
# (Extended JSON strings), limit, skip.
sub node_find {
    my ($self, $db, $coll, %q) = @_;
    my @args = ($self->uri, $db, $coll, map { $q{$_} // '' } qw(filter projection sort limit skip));
    open my $fh, '-|', 'node', "$DIR/query.js", @args or die "node query.js: $!";
    local $/;
    my $out = <$fh>;
    close $fh or die "node query.js failed (status $?)\n";
    return json_decode($out) // die "query.js printed no JSON: $out\n";
}

sub DESTROY {
    my ($self) = @_;
    return unless $self->{pid} && $self->{owner} == $$;
    kill 'TERM', $self->{pid};
    waitpid($self->{pid}, 0);
}

1;
