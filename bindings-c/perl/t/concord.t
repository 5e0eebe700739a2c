# Against a real concord: every call, watch order, a lease lost,
# exceptions with etcd's messages, and a user with a password.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use Concord;

my $bin = $ENV{CONCORD_BIN} or plan skip_all => 'CONCORD_BIN is not set';
my $port = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)->sockport;
my $dir = tempdir(CLEANUP => 1);
my $url = "http://127.0.0.1:$port";
my $pid = fork // die;
if (!$pid) {
    open STDERR, '>', '/dev/null';
    exec $bin, '--data-dir', "$dir/d", '--listen-client-urls', $url, '--advertise-client-urls', $url,
        '--bcrypt-cost', '4';
    exit 127;
}
END { kill 'TERM', $pid if $pid; waitpid $pid, 0 if $pid }
for (1 .. 200) { last if IO::Socket::INET->new("127.0.0.1:$port"); sleep 0.05 }

my $c = Concord->new(endpoints => ["127.0.0.1:$port"], timeout => 10);
my $rev = $c->put('k', "v\0bin");
ok($rev > 1, 'put returns the revision');
my $kv = $c->get('k');
is($kv->{value}, "v\0bin", 'get: bytes with a NUL');
is($kv->{mod_revision}, $rev, 'get: revision');
is($c->get('missing'), undef, 'missing key');

$c->put("p/$_", $_) for 1 .. 5;
my $r = $c->range('p/', prefix => 1, limit => 2);
is(scalar @{ $r->{kvs} }, 2, 'range limit');
is($r->{count}, 5, 'range count');
ok($r->{more}, 'range more');
is($c->range('p/2', range_end => 'p/4')->{count}, 2, 'range_end');
is($c->range('p/', prefix => 1, count_only => 1)->{count}, 5, 'count_only');
is($c->delete('p/', prefix => 1), 5, 'delete prefix');
is($c->delete('k'), 1, 'delete key');

# Watch: events in order, delivered in this thread.
my @seen;
my $w = $c->watch('w/', prefix => 1, sub { push @seen, "$_[0]{type} $_[0]{kv}{key}=$_[0]{kv}{value}" });
$c->put('w/a', '1');
$c->put('w/a', '2');
$c->delete('w/a');
my $deadline = time + 10;
$w->wait(0.5) while @seen < 3 && time < $deadline;
is_deeply(\@seen, ['PUT w/a=1', 'PUT w/a=2', 'DELETE w/a='], 'watch: puts and deletes in order');
ok($w->fd > 2, 'watch: a file descriptor for event loops');
$w->cancel;
$c->put('w/b', '3');
sleep 0.3;
is($w->wait(0.2), 0, 'no events after cancel');
undef $w;

my @d;
my $w2 = $c->watch('d', sub { push @d, $_[0]{kv}{value} });
$c->put('d', 'x');
Concord::dispatch(5);
is_deeply(\@d, ['x'], 'Concord::dispatch runs the callbacks');

# Leases.
my $lease = $c->lease_grant(5);
ok($lease->id, 'lease granted');
$c->put('l', 'v', lease => $lease);
ok($lease->ttl > 0, 'lease ttl');
my $ka = $lease->keep_alive;
is($ka->lost(0.3), undef, 'kept alive');
$lease->revoke;
like($ka->lost(5) // '', qr/lease/, 'a revoked lease is reported lost');
is($c->get('l'), undef, 'its key went with it');
is($lease->ttl, -1, 'gone');

# Status, members, locks.
my $st = $c->status;
ok($st->{leader} && $st->{revision} > 1, 'status');
my $ms = $c->members;
is(scalar @$ms, 1, 'one member');
like($ms->[0]{client_urls}[0], qr/^http:\/\/127\.0\.0\.1:/, 'member client URL');
my $lock = $c->lock('jobs', ttl => 10);
like($lock->key, qr{^jobs/}, 'lock key');
ok($lock->revision > 0, 'fencing token');
eval { $c->lock('jobs', ttl => 10, timeout => 0.3) };
ok($@ && $@->message =~ /deadline/, 'a second lock waits, then times out');
$lock->unlock;
my $again = $c->lock('jobs', ttl => 10, timeout => 5);
ok($again->revision > $lock->revision, 'the next holder has a higher token');
$again->unlock;

# Errors: Concord::Error with etcd's code and message.
eval { $c->put('', 'x') };
isa_ok($@, 'Concord::Error');
is($@->code, 3, 'error code');
is($@->message, 'etcdserver: key is not provided', 'error message');
eval { $c->put('k', 'v', lease => 0x1234) };
is("$@", 'etcdserver: requested lease not found', 'error stringifies to the message');

# Auth: a user with a password; a wrong password dies.
system('etcdctl', "--endpoints=127.0.0.1:$port", @$_) for
    ['user', 'add', 'root:rootpw'], ['user', 'grant-role', 'root', 'root'], ['auth', 'enable'];
my $root = Concord->new(endpoints => ["127.0.0.1:$port"], user => 'root', password => 'rootpw');
ok($root->put('secret', 's'), 'put as root');
eval { Concord->new(endpoints => ["127.0.0.1:$port"], user => 'root', password => 'wrong') };
like("$@", qr/authentication failed/, 'wrong password');
eval { $c->get('secret') };
ok($@, 'no token while auth is on');

done_testing;
