# The static service: files under a root with their types from
# /etc/mime.types, validators and 304s, single byte ranges, directories and
# their index, and never a byte from outside the root: traversal attempts
# (raw, encoded, backslashes, NUL), symbolic links that lead out, dotfiles
# and directory listings are all 404. The body goes out with sendfile(): a
# 32 MiB file does not grow the worker, and a client that does not read it
# holds up no other request.
use strict;
use warnings;
use Test::More;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);
use Clusterd qw(poll_until json_decode rss_kb);

my $tmp = tempdir('clusterd-static-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $root = "$tmp/www";
my $root2 = "$tmp/site";

sub put {
    my ($path, $data) = @_;
    (my $dir = $path) =~ s{/[^/]*$}{};
    make_path($dir);
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh $data;
    close $fh or die "$path: $!";
}

my $bin4k = join '', map { chr(($_ * 7 + 3) % 256) } 0 .. 4095;
put("$root/index.html", "<h1>home</h1>\n");
put("$root/4k.bin", $bin4k);
put("$root/style.css", "body{}\n");
put("$root/app.js", "let a;\n");
put("$root/logo.svg", "<svg/>\n");
put("$root/font.woff2", "wOF2");
put("$root/data.json", "{}\n");
put("$root/notes.txt", "notes\n");
put("$root/README", "no extension\n");
put("$root/UPPER.HTML", "<p>upper</p>\n");
put("$root/unknown.zzqx", "?\n");
put("$root/empty.txt", '');
put("$root/with space.txt", "spaced\n");
put("$root/caf\xc3\xa9.txt", "utf-8 name\n");
put("$root/sub/index.html", "<p>sub</p>\n");
put("$root/sub/page.html", "<p>page</p>\n");
put("$root/sub/.hidden", "hidden\n");
put("$root/noindex/file.txt", "in noindex\n");
put("$root/.env", "SECRET=dotfile\n");
put("$root/.git/config", "SECRET=dotdir\n");
put("$tmp/secret.txt", "SECRET=outside\n");
put("$tmp/secretdir/file.txt", "SECRET=outside dir\n");
symlink('../secret.txt', "$root/out") or die;                # a relative link out
symlink('../secretdir', "$root/outdir") or die;              # a directory link out
symlink("$tmp/secret.txt", "$root/abs") or die;              # an absolute link
symlink('/etc', "$root/etc") or die;                         # to /etc
symlink('sub/page.html', "$root/in.html") or die;            # a link that stays beneath
symlink('..', "$root/sub/up") or die;                        # back to the root: beneath
POSIX::mkfifo("$root/fifo", 0600) or die "mkfifo: $!";
put("$root2/index.html", "<p>site</p>\n");
put("$root2/evil.example/index.html", "<p>evil</p>\n");
{
    # 32 MiB, written: a mapping of a hole might not count in RSS
    open my $fh, '>', "$root/big.bin" or die;
    my $chunk = 'x' x (1 << 20);
    print $fh $chunk for 1 .. 32;
    close $fh;
}

# The types Debian's /etc/mime.types gives, as the test reads them.
my %types;
if (open my $fh, '<', '/etc/mime.types') {
    while (<$fh>) {
        s/#.*//;
        my ($type, @ext) = split;
        next unless $type && $type =~ m{/};
        $types{lc $_} //= $type for @ext;
    }
}
sub want_type {
    my ($ext) = @_;
    my $t = $types{$ext} // return 'application/octet-stream';
    return $t =~ m{^text/|^application/(javascript|json)$} ? "$t; charset=utf-8" : $t;
}

my $c = Clusterd->new(config => { workers => 1, routes => [
    { prefix => '/s', service => 'static', root => $root, max_age_s => 600 },
    { prefix => '/dummy', service => 'dummy' },
    { prefix => '/', service => 'static', root => $root2 },
] })->start;

sub get { my ($path, %o) = @_; return $c->get($path, %o) }
sub hdrs { my $h = join '', map { "$_\r\n" } @_; return (headers => $h) }

# ---- files ----
my ($st, $h, $body) = get('/s/4k.bin');
is($st, 200, 'a file: 200');
is($body, $bin4k, '... its bytes');
is($h->{'content-length'}, 4096, '... Content-Length');
is($h->{'content-type'}, want_type('bin'), '... the type of .bin in /etc/mime.types');
my @s = stat "$root/4k.bin";
my $etag = sprintf('"%x-%x"', $s[9], $s[7]);
is($h->{etag}, $etag, 'ETag as nginx makes it: "mtime-size" in hexadecimal');
my $lastmod = POSIX::strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime $s[9]);
is($h->{'last-modified'}, $lastmod, 'Last-Modified: the mtime, IMF-fixdate');
is($h->{'cache-control'}, 'max-age=600', 'Cache-Control: max-age=max_age_s');
is($h->{'accept-ranges'}, 'bytes', 'Accept-Ranges: bytes');

for my $case (['/s/index.html', 'html'], ['/s/style.css', 'css'], ['/s/app.js', 'js'],
    ['/s/logo.svg', 'svg'], ['/s/font.woff2', 'woff2'], ['/s/data.json', 'json'],
    ['/s/notes.txt', 'txt'], ['/s/UPPER.HTML', 'html']) {
    my ($path, $ext) = @$case;
    my ($st, $h) = get($path);
    is("$st $h->{'content-type'}", "200 " . want_type($ext), "$path: the type from /etc/mime.types");
}
SKIP: {
    skip 'no /etc/mime.types (the media-types package)', 2 unless %types;
    ok(want_type('css') =~ m{^text/css}, 'the test read /etc/mime.types');
    ok(!exists $types{zzqx}, 'zzqx is no extension there');
}
($st, $h) = get('/s/unknown.zzqx');
is($h->{'content-type'}, 'application/octet-stream', 'an unknown extension: application/octet-stream');
($st, $h) = get('/s/README');
is($h->{'content-type'}, 'application/octet-stream', 'no extension: application/octet-stream');
($st, $h, $body) = get('/s/empty.txt');
is("$st $h->{'content-length'} [$body]", '200 0 []', 'an empty file');
($st, undef, $body) = get('/s/with%20space.txt');
is("$st $body", "200 spaced\n", 'a name with a space, percent-encoded');
($st, undef, $body) = get('/s/caf%C3%A9.txt');
is("$st $body", "200 utf-8 name\n", 'a UTF-8 name, percent-encoded');
($st, undef, $body) = get('/s/in.html');
is("$st $body", "200 <p>page</p>\n", 'a symbolic link that stays beneath the root is followed');
($st, undef, $body) = get('/s/sub/up/notes.txt');
is("$st $body", "200 notes\n", '... a directory link too');

($st, $h, $body) = get('/s/4k.bin', method => 'HEAD');
is("$st $h->{'content-length'} $h->{etag} [$body]", "200 4096 $etag []",
    'HEAD: the same headers, no body');
($st, $h) = get('/s/4k.bin', method => 'POST');
is("$st $h->{allow}", '405 GET, HEAD', 'POST: 405, Allow: GET, HEAD');

# ---- conditional requests (RFC 9110, 13.2.2) ----
($st, $h, $body) = get('/s/4k.bin', hdrs("If-None-Match: $etag"));
is($st, 304, 'If-None-Match with the ETag: 304');
is("$h->{etag} $h->{'last-modified'} $h->{'cache-control'}", "$etag $lastmod max-age=600",
    '... with ETag, Last-Modified and Cache-Control');
ok(!exists $h->{'content-length'} && $body eq '', '... and no body');
is((get('/s/4k.bin', hdrs(qq{If-None-Match: "x", W/$etag})))[0], 304, 'a weak tag in a list: 304');
is((get('/s/4k.bin', hdrs('If-None-Match: *')))[0], 304, 'If-None-Match: *: 304');
is((get('/s/4k.bin', hdrs('If-None-Match: "other"')))[0], 200, 'another tag: 200');
is((get('/s/4k.bin', method => 'HEAD', hdrs("If-None-Match: $etag")))[0], 304, 'HEAD: 304 too');
is((get('/s/4k.bin', hdrs("If-Modified-Since: $lastmod")))[0], 304, 'If-Modified-Since the mtime: 304');
my $later = POSIX::strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime($s[9] + 3600));
my $earlier = POSIX::strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime($s[9] - 3600));
is((get('/s/4k.bin', hdrs("If-Modified-Since: $later")))[0], 304, '... or later: 304');
is((get('/s/4k.bin', hdrs("If-Modified-Since: $earlier")))[0], 200, '... earlier: 200');
is((get('/s/4k.bin', hdrs('If-Modified-Since: not a date')))[0], 200, '... not a date: ignored, 200');
my $asctime = POSIX::strftime('%a %b %e %H:%M:%S %Y', gmtime $s[9]);
is((get('/s/4k.bin', hdrs("If-Modified-Since: $asctime")))[0], 304, '... in asctime format too');
is((get('/s/4k.bin', hdrs('If-None-Match: "other"', "If-Modified-Since: $later")))[0], 200,
    'If-None-Match takes precedence over If-Modified-Since');
is((get('/s/4k.bin', hdrs('If-Match: "other"')))[0], 412, 'If-Match with another tag: 412');
is((get('/s/4k.bin', hdrs("If-Match: $etag")))[0], 200, 'If-Match with the ETag: 200');
is((get('/s/4k.bin', hdrs("If-Match: W/$etag")))[0], 412, 'If-Match compares strongly: W/ is 412');
is((get('/s/4k.bin', hdrs("If-Unmodified-Since: $earlier")))[0], 412, 'If-Unmodified-Since earlier: 412');
is((get('/s/4k.bin', hdrs("If-Unmodified-Since: $lastmod")))[0], 200, '... the mtime: 200');

# ---- ranges ----
($st, $h, $body) = get('/s/4k.bin', hdrs('Range: bytes=0-9'));
is($st, 206, 'Range: bytes=0-9: 206');
is($h->{'content-range'}, 'bytes 0-9/4096', '... Content-Range');
is($h->{'content-length'}, 10, '... Content-Length');
is($body, substr($bin4k, 0, 10), '... those bytes');
($st, $h, $body) = get('/s/4k.bin', hdrs('Range: bytes=4000-'));
is("$st $h->{'content-range'}", '206 bytes 4000-4095/4096', 'bytes=4000-: to the end');
is($body, substr($bin4k, 4000), '... those bytes');
($st, $h, $body) = get('/s/4k.bin', hdrs('Range: bytes=-100'));
is("$st $h->{'content-range'}", '206 bytes 3996-4095/4096', 'bytes=-100: the last 100');
is($body, substr($bin4k, -100), '... those bytes');
($st, $h, $body) = get('/s/4k.bin', hdrs('Range: bytes=100-99999'));
is("$st $h->{'content-range'} " . length($body), '206 bytes 100-4095/4096 3996', 'a last byte past the end: to the end');
($st, $h, $body) = get('/s/4k.bin', hdrs('Range: bytes=4096-'));
is($st, 416, 'a range past the end: 416');
is($h->{'content-range'}, 'bytes */4096', '... Content-Range: bytes */size');
is((json_decode($body) // {})->{error}{code}, 'range_not_satisfiable', '... a JSON error');
is((get('/s/4k.bin', hdrs('Range: bytes=-0')))[0], 416, 'a suffix of 0 bytes: 416');
is((get('/s/empty.txt', hdrs('Range: bytes=0-')))[0], 416, 'an empty file: 416');
($st, $h, $body) = get('/s/4k.bin', hdrs('Range: bytes=0-1,10-11'));
is("$st " . length($body), '200 4096', 'several ranges: the whole file, 200');
ok(!exists $h->{'content-range'}, '... without Content-Range');
is((get('/s/4k.bin', hdrs('Range: bytes=9-0')))[0], 200, 'an invalid range: ignored, 200');
is((get('/s/4k.bin', hdrs('Range: lines=0-1')))[0], 200, 'another unit: ignored, 200');
($st, $h, $body) = get('/s/4k.bin', method => 'HEAD', hdrs('Range: bytes=0-9'));
is("$st $h->{'content-length'}", '200 4096', 'HEAD ignores Range (only GET has ranges)');
is((get('/s/4k.bin', hdrs('Range: bytes=0-9', "If-Range: $etag")))[0], 206, 'If-Range with the ETag: 206');
is((get('/s/4k.bin', hdrs('Range: bytes=0-9', 'If-Range: "old"')))[0], 200, 'If-Range with another: 200, all of it');
is((get('/s/4k.bin', hdrs('Range: bytes=0-9', "If-Range: W/$etag")))[0], 200, 'If-Range with a weak tag: 200');
is((get('/s/4k.bin', hdrs('Range: bytes=0-9', "If-Range: $lastmod")))[0], 206, 'If-Range with Last-Modified: 206');
is((get('/s/4k.bin', hdrs('Range: bytes=0-9', "If-Range: $earlier")))[0], 200, 'If-Range with an older date: 200');

# A changed file has new validators.
utime $s[9] + 10, $s[9] + 10, "$root/4k.bin" or die;
($st, $h) = get('/s/4k.bin', hdrs("If-None-Match: $etag"));
is($st, 200, 'the file changed: the old ETag gets 200');
isnt($h->{etag}, $etag, '... and a new ETag');

# ---- directories ----
($st, $h, $body) = get('/s/sub/');
is("$st $body", "200 <p>sub</p>\n", 'a directory with a slash: its index.html');
is($h->{'content-type'}, want_type('html'), '... typed as html');
($st, $h) = get('/s/sub');
is("$st $h->{location}", '301 /s/sub/', 'without the slash: 301 to it, as nginx and Express do');
($st, $h) = get('/s/sub?a=1&b=%20');
is("$st $h->{location}", '301 /s/sub/?a=1&b=%20', '... keeping the query');
($st, $h) = get('/s');
is("$st $h->{location}", '301 /s/', 'the prefix itself: 301 to the prefix and a slash');
($st, undef, $body) = get('/s/');
is("$st $body", "200 <h1>home</h1>\n", '... which serves the root index');
is((get('/s/noindex/'))[0], 404, 'a directory without an index: 404, never a listing');
is((get('/s/noindex'))[0], 404, '... without the slash too (no redirect to a 404)');
is((get('/s/notes.txt/'))[0], 404, 'a file with a slash: 404');
($st, undef, $body) = get('/s/noindex/file.txt');
is("$st $body", "200 in noindex\n", 'a file in such a directory is served');
($st, undef, $body) = get('/');
is("$st $body", "200 <p>site</p>\n", 'prefix /: the index of its root');
($st, $h) = get('//evil.example');
is("$st $h->{location}", '301 /evil.example/', '//host: the redirect stays on this site, never //host/');

# ---- never outside the root ----
my @outside = (
    '/s/../secret.txt', '/s/sub/../../secret.txt', '/s/%2e%2e/secret.txt', '/s/%2E%2E/secret.txt',
    '/s/.%2e/secret.txt', '/s/%2e./secret.txt', '/s/sub/%2e%2e/%2e%2e/secret.txt',
    '/s/..%2fsecret.txt', '/s/%2e%2e%2fsecret.txt', '/s/sub%2f..%2f..%2fsecret.txt',
    '/s/..%2Fsecret.txt', '/s/..\\secret.txt', '/s/..%5csecret.txt', '/s/..%5Csecret.txt',
    '/s/sub\\..\\..\\secret.txt', '/s/%00', '/s/notes.txt%00.html', '/s/..%00/secret.txt',
    '/s/%252e%252e/secret.txt', '/s/....//secret.txt', '/s/out', '/s/outdir/file.txt',
    '/s/abs', '/s/etc/passwd', '/s//etc/passwd', '/s/sub/up/../secret.txt',
    '/s/.env', '/s/.git/config', '/s/%2eenv', '/s/%2Egit/config', '/s/sub/.hidden',
    '/s/./notes.txt', '/s/sub/.', '/s/%2e', '/s/fifo', '/s/a%zz', '/s/a%2',
);
for my $path (@outside) {
    my ($st, undef, $body) = get($path);
    ok($st == 404 && $body !~ /SECRET|root:/, "$path: 404") or diag "$st $body";
}
# An absolute-form target, with a traversal in it.
($st) = get('http://t/s/%2e%2e/secret.txt');
is($st, 404, 'an absolute-form target with %2e%2e: 404');
($st, undef, $body) = get('/s/fifo');
is($st, 404, 'a FIFO: 404, at once (opened non-blocking)');
my $j = $c->get_json('/dummy');
ok($j && $j->{ok}, 'the worker still serves');

# ---- the body is sent by the kernel ----
{
    my ($pid) = $c->workers;
    my (undef, $hwm0) = rss_kb($pid);
    my ($st, $h, $body) = get('/s/big.bin');
    is("$st $h->{'content-length'} " . length($body), '200 33554432 33554432', 'a 32 MiB file, whole');
    my (undef, $hwm1) = rss_kb($pid);
    ok($hwm1 - $hwm0 < 8 * 1024, "... the worker's peak RSS grew by less than 8 MiB ("
        . ($hwm1 - $hwm0) . ' kB): never read into memory');

    # A client that asks for it and reads nothing holds up no other request.
    my $slow = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    setsockopt($slow, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
    print $slow "GET /s/big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    my $t0 = time;
    my ($st2, undef, $b2) = get('/s/notes.txt');
    my $took = time - $t0;
    is("$st2 $b2", "200 notes\n", 'while a client does not read a 32 MiB file, the one worker serves others');
    # a worker stuck on the reader would answer after the 30 s read timeout, if ever
    ok($took < 5, sprintf('... at once (%.3f s)', $took));
    close $slow;
}

is($c->sanitizer_report, '', 'no sanitizer report');
$c->stop;

# ---- the config ----
sub check {
    my ($route) = @_;
    my $bad = Clusterd->new(config => { routes => [ { prefix => '/s', service => 'static', %$route } ] });
    my $out = `$ENV{CLUSTERD} -t -c @{[$bad->conf]} 2>&1`;
    return $out;
}
like(check({}), qr/routes\[0\]\.root: required key is missing/, '-t: root is required');
{
    # A relative root is taken from the directory clusterd runs in.
    require Cwd;
    my $here = Cwd::getcwd();
    chdir $tmp or die "$tmp: $!";
    is(check({ root => 'www' }), "ok\n", '-t: a relative root, from the current directory');
    mkdir "$tmp/elsewhere" or die;
    chdir "$tmp/elsewhere" or die;
    like(check({ root => 'www' }), qr/routes\[0\]\.root: \Q$tmp\E\/elsewhere\/www: No such file or directory/,
        '-t: ... named absolute in the error where it is missing');
    chdir $tmp or die;
    my $rel = Clusterd->new(config => { workers => 1,
        routes => [ { prefix => '/s', service => 'static', root => 'www' } ] })->start;
    chdir $here or die "$here: $!";
    my ($code, undef, $text) = $rel->get('/s/notes.txt');
    is("$code $text", "200 notes\n", '... and served from there');
    $rel->stop;
}
like(check({ root => "$tmp/nope" }), qr/routes\[0\]\.root: \Q$tmp\E\/nope: No such file or directory/,
    '-t: root must exist');
like(check({ root => "$root/notes.txt" }), qr/routes\[0\]\.root: .* is not a directory/, '-t: root must be a directory');
like(check({ root => $root, index => 'a/b.html' }), qr/routes\[0\]\.index: .*must be a file name/, '-t: index is a file name');
like(check({ root => $root, index => '.index.html' }), qr/routes\[0\]\.index:/, '-t: ... not a dotfile');
like(check({ root => $root, max_age_s => -1 }), qr/routes\[0\]\.max_age_s:/, '-t: max_age_s is not negative');
like(check({ root => $root, max_age_s => 31536001 }), qr/routes\[0\]\.max_age_s:/, '-t: ... at most a year');
like(check({ root => $root, mime_types => "$tmp/nope.types" }),
    qr/routes\[0\]\.mime_types: \Q$tmp\E\/nope\.types: No such file or directory/,
    '-t: a mime_types file named must exist');
like(check({ root => $root, listing => 1 }), qr/routes\[0\]\.listing: unknown key/, '-t: unknown keys');
is(check({ root => $root, index => 'home.htm', max_age_s => 31536000 }), "ok\n", '-t: a good route');

# mime_types: a file of one's own.
put("$tmp/my.types", "text/x-mine zzqx\n");
$c = Clusterd->new(config => { workers => 1, routes => [
    { prefix => '/s', service => 'static', root => $root, mime_types => "$tmp/my.types", index => 'page.html' } ] })->start;
($st, $h) = get('/s/unknown.zzqx');
is($h->{'content-type'}, 'text/x-mine; charset=utf-8', 'mime_types: the types of that file');
($st, $h) = get('/s/style.css');
is($h->{'content-type'}, 'application/octet-stream', '... and only those');
($st, undef, $body) = get('/s/sub/');
is("$st $body", "200 <p>page</p>\n", 'index: another name');
is($h->{'cache-control'}, 'max-age=0', 'max_age_s: 0 by default');
$c->stop;

# Without /etc/mime.types (no media-types package): a warning, and octet-stream for all.
my $inject = "$ENV{TOP_BUILDDIR}/t/inject.so";
SKIP: {
    skip "no $inject", 4 unless -f $inject;
    local $ENV{LD_PRELOAD} = $inject;
    local $ENV{CLUSTERD_INJECT_ENOENT} = '/etc/mime.types';
    # an ASan build wants its runtime first; the preload is not instrumented
    local $ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'verify_asan_link_order=0';
    my $conf = { workers => 1, routes => [ { prefix => '/s', service => 'static', root => $root } ] };
    my $out = `$ENV{CLUSTERD} -t -c @{[Clusterd->new(config => $conf)->conf]} 2>&1`;
    like($out, qr/\[warn\].*routes\[0\].*\/etc\/mime\.types: No such file or directory.*application\/octet-stream/,
        '-t warns that /etc/mime.types is missing');
    like($out, qr/^ok$/m, '... and the config is still good');
    $c = Clusterd->new(config => $conf)->start;
    ($st, $h) = get('/s/index.html');
    is("$st $h->{'content-type'}", '200 application/octet-stream', '... every file is application/octet-stream');
    like($c->log_text, qr/cannot read \/etc\/mime\.types/, '... and the log says why');
    $c->stop;
}

done_testing;
