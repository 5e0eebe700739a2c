# Against a real concord: every call, watch order, a lease lost and one
# expiring, transactions, exceptions with etcd's messages, and auth.
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

# Transactions: compares, both branches, every operation.
$c->put('t/a', '1');
my $t = $c->txn(
    compare => [ { key => 't/a', target => 'value', result => '==', value => '1' } ],
    success => [ { put => 't/b', value => '2' }, { get => 't/', prefix => 1 }, { delete => 't/a' } ],
    failure => [ { put => 't/failed', value => 'x' } ],
);
ok($t->{succeeded}, 'txn: the compare held');
is_deeply([ map { $_->{type} } @{ $t->{responses} } ], [qw(put get delete)], 'txn: one answer per operation');
is_deeply([ map { "$_->{key}=$_->{value}" } @{ $t->{responses}[1]{kvs} } ], [ 't/a=1', 't/b=2' ],
    'txn: the get sees the put before it');
is($t->{responses}[2]{deleted}, 1, 'txn: the delete');
$t = $c->txn(
    compare => [ { key => 't/a', target => 'version', result => '>', value => 0 } ],
    success => [ { put => 't/never', value => 'x' } ],
    failure => [ { get => 't/b' } ],
);
ok(!$t->{succeeded}, 'txn: version 0 after the delete, the failure branch ran');
is($t->{responses}[0]{kvs}[0]{value}, '2', 'txn: failure get');
is($c->get('t/never'), undef, 'txn: the success branch did not run');
eval { $c->txn(success => [ { put => 't/x', value => '1' }, { put => 't/x', value => '2' } ]) };
is("$@", 'etcdserver: duplicate key given in txn request', 'txn: etcd\'s error');
$t = $c->txn(success => [ { txn => {
    compare => [ { key => 't/b', target => 'value', result => '==', value => 'nope' } ],
    success => [ { put => 't/inner', value => 'wrong' } ],
    failure => [ { put => 't/inner', value => 'right' }, { get => 't/b' } ],
} } ]);
ok($t->{succeeded} && !$t->{responses}[0]{txn}{succeeded}, 'nested txn: its own compare');
is_deeply([ map { $_->{type} } @{ $t->{responses}[0]{txn}{responses} } ], [qw(put get)], 'nested txn: answers');
is($c->get('t/inner')->{value}, 'right', 'nested txn: its branch ran');
$c->delete('t/', prefix => 1);

# Every range option.
my $first = $c->put('s/a', '3');
$c->put('s/b', '1');
$c->put('s/c', '2');
is_deeply([ map { $_->{value} } @{ $c->range('s/', prefix => 1, sort_target => 'value', sort_order => 'desc')->{kvs} } ],
    [ 3, 2, 1 ], 'range: sorted by value, descending');
is(scalar @{ $c->range('s/', prefix => 1, min_mod_revision => $first + 1)->{kvs} }, 2, 'range: min_mod_revision (count is before the filter, as etcd)');
is(scalar @{ $c->range('s/', prefix => 1, max_create_revision => $first)->{kvs} }, 1, 'range: max_create_revision');
my $fk = $c->range('s/b', from_key => 1, keys_only => 1);
is($fk->{kvs}[0]{key}, 's/b', 'range: from_key');
is($fk->{kvs}[0]{value}, '', 'range: keys_only');
is($c->range('s/', prefix => 1, revision => $first)->{count}, 1, 'range: at a revision');
$c->delete('s/', prefix => 1);

# A lease nobody keeps alive expires, taking its key along.
my $short = $c->lease_grant(2);
$c->put('expiring', 'soon', lease => $short);
ok($c->time_to_live($short->id) > 0, 'time_to_live');
$deadline = time + 15;
sleep 0.2 while $short->time_to_live != -1 && time < $deadline;
is($short->time_to_live, -1, 'the lease expired');
is($c->get('expiring'), undef, 'its key went with it');

# Auth, administered from Perl: users, roles, permissions, enable/disable.
ok($c->user_add('root', 'rootpw') && $c->role_add('root') && $c->user_grant_role('root', 'root'), 'root');
ok($c->user_add('alice', 'alicepw') && $c->role_add('app'), 'alice and app');
$c->role_grant_permission('app', 'readwrite', 'app/', prefix => 1);
$c->user_grant_role('alice', 'app');
is_deeply([ sort @{ $c->user_list } ], [qw(alice root)], 'user_list');
is_deeply([ sort @{ $c->role_list } ], [qw(app root)], 'role_list');
is_deeply($c->user_get('alice')->{roles}, ['app'], 'user_get');
is_deeply($c->role_get('app')->{permissions}, [ { type => 'readwrite', key => 'app/', range_end => 'app0' } ],
    'role_get');
$c->auth_enable;
my $root = Concord->new(endpoints => ["127.0.0.1:$port"], user => 'root', password => 'rootpw');
my $alice = Concord->new(endpoints => ["127.0.0.1:$port"], user => 'alice', password => 'alicepw');
ok($alice->put('app/x', '1'), 'alice writes under app/');
eval { $alice->put('other', '1') };
is("$@", 'etcdserver: permission denied', 'alice may not write elsewhere');
eval { Concord->new(endpoints => ["127.0.0.1:$port"], user => 'root', password => 'wrong') };
like("$@", qr/authentication failed/, 'wrong password');
eval { $c->get('app/x') };
ok($@, 'no token while auth is on');
$root->role_revoke_permission('app', 'app/', prefix => 1);
eval { $alice->get('app/x') };
is("$@", 'etcdserver: permission denied', 'after the revoke alice may not read');
$root->user_change_password('alice', 'newpw');
ok(Concord->new(endpoints => ["127.0.0.1:$port"], user => 'alice', password => 'newpw'),
    'the new password works');
$root->auth_disable;
ok($c->user_delete('alice') && $c->role_delete('app'), 'auth off: clean up');

done_testing;
