package Concord;
# Concord: a client of Concord and etcd for Perl, on libconcord (the shared
# Rust client: failover between members, watches resumed without loss,
# lease keep-alive, token renewal).
use strict;
use warnings;

our $VERSION = '0.1.0';

require XSLoader;
XSLoader::load('Concord', $VERSION);

my %WATCHES;    # live watches, for Concord::dispatch (weak: see Scalar::Util)
use Scalar::Util qw(weaken refaddr);

sub new {
    my ($class, %o) = @_;
    my $eps = $o{endpoints} || ['127.0.0.1:2379'];
    $eps = [$eps] unless ref $eps;
    my $c = _new($eps, $o{user}, $o{password}, $o{timeout} || 5);
    return bless { c => $c }, $class;
}

sub DESTROY { my $s = shift; _free($s->{c}) if $s->{c}; $s->{c} = 0 }

sub put {
    my ($s, $key, $value, %o) = @_;
    my $lease = ref $o{lease} ? $o{lease}->id : ($o{lease} || 0);
    return _put($s->{c}, $key, $value, $lease);
}

sub get {
    my ($s, $key, %o) = @_;
    my $r = _range($s->{c}, $key, undef, { revision => $o{revision} || 0, serializable => $o{serializable} ? 1 : 0 });
    return $r->{kvs}[0];
}

my %SORT_TARGET = (key => 0, version => 1, create => 2, create_revision => 2, mod => 3, mod_revision => 3,
    value => 4);
my %SORT_ORDER = (none => 0, asc => 1, ascend => 1, desc => 2, descend => 2);

# Options: prefix, range_end, from_key, limit, revision, serializable,
# keys_only, count_only, sort_target (key, version, create, mod, value),
# sort_order (asc, desc), min_mod_revision, max_mod_revision,
# min_create_revision, max_create_revision.
sub range {
    my ($s, $key, %o) = @_;
    my %n = map { $_ => ($o{$_} ? 1 : 0) } qw(prefix serializable keys_only count_only from_key);
    $n{$_} = $o{$_} || 0 for qw(limit revision min_mod_revision max_mod_revision min_create_revision
        max_create_revision);
    if (defined $o{sort_order} || defined $o{sort_target}) {
        $n{sort_target} = $SORT_TARGET{ lc($o{sort_target} // 'key') };
        $n{sort_order} = $SORT_ORDER{ lc($o{sort_order} // 'asc') };
        die "range: unknown sort_target $o{sort_target}\n" unless defined $n{sort_target};
        die "range: unknown sort_order $o{sort_order}\n" unless defined $n{sort_order};
    }
    return _range($s->{c}, $key, $o{range_end}, \%n);
}

sub delete {
    my ($s, $key, %o) = @_;
    return _delete($s->{c}, $key, $o{range_end}, $o{prefix} ? 1 : 0);
}

sub status { _status($_[0]{c}) }

# The key range a `prefix => 1` option stands for: [key, _prefix_end(key)).
sub _prefix_end {
    my @b = unpack 'C*', shift;
    while (@b) {
        if ($b[-1] < 0xff) { $b[-1]++; return pack 'C*', @b }
        pop @b;
    }
    return "\0";    # every key
}

sub _range_end { my ($key, %o) = @_; $o{prefix} ? _prefix_end($key) : $o{range_end} }

my %TARGET = (version => 0, create => 1, create_revision => 1, mod => 2, mod_revision => 2, value => 3, lease => 4);
my %RESULT = ('==' => 0, '=' => 0, '>' => 1, '<' => 2, '!=' => 3);
my %OP = (put => 0, get => 1, delete => 2);

sub _txn_op {
    my ($op) = @_;
    if (my $t = $op->{txn}) {
        return [ 3, '', undef, undef, 0, 0, _txn_parts(%$t) ];
    }
    my ($type) = grep { exists $op->{$_} } qw(put get delete);
    die "txn: an operation needs put, get, delete or txn\n" unless defined $type;
    my $key = $op->{$type};
    my $lease = ref $op->{lease} ? $op->{lease}->id : ($op->{lease} || 0);
    return [ $OP{$type}, $key, $op->{value}, $op->{prefix} ? undef : $op->{range_end}, $op->{prefix} ? 1 : 0,
        $lease ];
}

# Runs a transaction:
#   compare => [ { key => 'k', target => 'value'|'version'|'create'|'mod'|'lease',
#                  result => '=='|'!='|'<'|'>', value => ... , range_end|prefix => ... }, ... ],
#   success => [ { put => 'k', value => 'v', lease => ... }, { get => 'k', prefix => 1 },
#                { delete => 'k', range_end => 'z' }, { txn => { compare => ..., success => ... } }, ... ],
#   failure => [ ... ]
# Returns { succeeded, revision, responses => [ { type => 'put'|'get'|'delete'|'txn', ... } ] }
# (a nested transaction's answer under `txn`).
sub txn {
    my ($s, %t) = @_;
    return _txn($s->{c}, @{ _txn_parts(%t) });
}

# [compares, success, failure] as the XS code takes them.
sub _txn_parts {
    my (%t) = @_;
    my @cmp;
    for my $c (@{ $t{compare} || [] }) {
        my $target = $TARGET{ $c->{target} || 'value' };
        my $result = $RESULT{ $c->{result} || '==' };
        die "txn: unknown compare target $c->{target}\n" unless defined $target;
        die "txn: unknown compare result $c->{result}\n" unless defined $result;
        my $v = $c->{value};
        push @cmp, [ $target, $result, $c->{key}, _range_end($c->{key}, %$c),
            $target == 3 ? 0 : ($v || 0), $target == 3 ? (defined $v ? $v : '') : undef ];
    }
    return [ \@cmp, [ map { _txn_op($_) } @{ $t{success} || [] } ], [ map { _txn_op($_) } @{ $t{failure} || [] } ] ];
}

# The seconds lease $id has left (-1: it does not exist).
sub time_to_live { my ($s, $id) = @_; _lease_ttl($s->{c}, ref $id ? $id->id : $id) }

# Auth administration (root's, while auth is on).
my %ADMIN = (auth_enable => 0, auth_disable => 1, user_add => 2, user_delete => 3, user_change_password => 4,
    user_grant_role => 5, user_revoke_role => 6, role_add => 7, role_delete => 8);
for my $name (keys %ADMIN) {
    no strict 'refs';
    my $op = $ADMIN{$name};
    *{"Concord::$name"} = sub { my ($s, $a, $b) = @_; _admin($s->{c}, $op, $a, $b); return 1 };
}

my %PERM = (read => 0, write => 1, readwrite => 2);

# Grants $role 'read', 'write' or 'readwrite' on $key (range_end => or prefix => 1).
sub role_grant_permission {
    my ($s, $role, $perm, $key, %o) = @_;
    my $p = $PERM{ lc $perm };
    die "unknown permission $perm (read, write, readwrite)\n" unless defined $p;
    _role_permission($s->{c}, 1, $role, $p, $key, _range_end($key, %o));
    return 1;
}

sub role_revoke_permission {
    my ($s, $role, $key, %o) = @_;
    _role_permission($s->{c}, 0, $role, 0, $key, _range_end($key, %o));
    return 1;
}

sub user_list { _names($_[0]{c}, 0, undef) }
sub role_list { _names($_[0]{c}, 1, undef) }
sub user_get { my ($s, $name) = @_; return { name => $name, roles => _names($s->{c}, 2, $name) } }
sub role_get { my ($s, $name) = @_; return { name => $name, permissions => _role_get($s->{c}, $name) } }

sub members { _members($_[0]{c}) }

# Takes the lock $name (waiting at most timeout => seconds; default: no
# limit) on a lease of ttl => seconds (default 60) kept alive while held.
# Returns a Concord::Lock: ->key, ->revision (the fencing token), ->unlock.
sub lock {
    my ($s, $name, %o) = @_;
    my $lease = $s->lease_grant($o{ttl} || 60);
    my $ka = $lease->keep_alive;
    my ($key, $rev) = eval { _lock($s->{c}, $name, $lease->id, defined $o{timeout} ? $o{timeout} : -1) };
    if (my $e = $@) { eval { $lease->revoke }; die $e }
    return bless { client => $s, key => $key, revision => $rev, lease => $lease, ka => $ka }, 'Concord::Lock';
}

sub lease_grant {
    my ($s, $ttl, %o) = @_;
    return Concord::Lease->_new($s, _lease_grant($s->{c}, $ttl, $o{id} || 0));
}

sub watch {
    my $cb = pop;
    my ($s, $key, %o) = @_;
    die "watch needs a callback\n" unless ref $cb eq 'CODE';
    my $w = _watch($s->{c}, $key, $o{range_end}, $o{prefix} ? 1 : 0, $o{start_revision} || 0,
        $o{prev_kv} ? 1 : 0);
    my $watch = bless { w => $w, cb => $cb, client => $s }, 'Concord::Watch';
    $WATCHES{ refaddr $watch } = $watch;
    weaken $WATCHES{ refaddr $watch };
    return $watch;
}

# Delivers the events waiting on every watch (waiting up to $timeout
# seconds for the first); returns how many callbacks ran.
sub dispatch {
    my ($timeout) = @_;
    my $n = 0;
    for my $w (grep { defined } values %WATCHES) { $n += $w->wait(0) }
    return $n if $n || !$timeout;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        for my $w (grep { defined } values %WATCHES) { $n += $w->wait(0.05) }
        return $n if $n;
    }
    return $n;
}

package Concord::Watch;

# Calls the callback for each waiting event (waiting up to $timeout
# seconds, default 0, for the first; undef: until one comes). Returns how
# many it delivered. Dies with Concord::Error if the watch ended in error.
sub wait {
    my ($s, $timeout) = @_;
    return 0 unless $s->{w};
    $timeout = -1 if @_ > 1 && !defined $timeout;
    $timeout = 0 unless defined $timeout;
    my $n = 0;
    while (my $ev = Concord::_watch_next($s->{w}, $n ? 0 : $timeout)) {
        $s->{cb}->($ev);
        $n++;
    }
    return $n;
}

# A file descriptor that is readable while events wait (for AnyEvent->io).
sub fd { Concord::_watch_fd($_[0]{w}) }

sub cancel { my $s = shift; Concord::_watch_cancel($s->{w}) if $s->{w} }

sub DESTROY { my $s = shift; Concord::_watch_free($s->{w}) if $s->{w}; $s->{w} = 0 }

package Concord::Lock;

sub key { $_[0]{key} }
sub revision { $_[0]{revision} }

# Releases the lock and revokes its lease.
sub unlock {
    my $s = shift;
    return unless $s->{key};
    Concord::_unlock($s->{client}{c}, delete $s->{key});
    delete $s->{ka};
    $s->{lease}->revoke;
}

sub DESTROY { my $s = shift; eval { $s->unlock } if $s->{key} }

package Concord::Lease;

sub _new { my ($class, $client, $id) = @_; bless { client => $client, id => $id }, $class }
sub id { $_[0]{id} }
sub ttl { my $s = shift; Concord::_lease_ttl($s->{client}{c}, $s->{id}) }
sub time_to_live { $_[0]->ttl }
sub revoke { my $s = shift; Concord::_lease_revoke($s->{client}{c}, $s->{id}) }

# Keeps the lease alive in the background until the returned handle goes.
sub keep_alive {
    my $s = shift;
    return bless { k => Concord::_keep_alive($s->{client}{c}, $s->{id}), lease => $s }, 'Concord::KeepAlive';
}

package Concord::KeepAlive;

# Waits up to $timeout seconds for the lease to be lost: the reason, or
# undef if it is still alive.
sub lost { my ($s, $timeout) = @_; Concord::_keep_alive_lost($s->{k}, defined $timeout ? $timeout : 0) }
sub DESTROY { my $s = shift; Concord::_keep_alive_free($s->{k}) if $s->{k}; $s->{k} = 0 }

package Concord::Error;
use overload '""' => sub { $_[0]{message} }, fallback => 1;
sub code { $_[0]{code} }
sub kind { $_[0]{kind} }
sub message { $_[0]{message} }

1;

__END__

=head1 NAME

Concord - client of Concord and etcd: KV, watches, leases, with failover

=head1 SYNOPSIS

  use Concord;
  my $c = Concord->new(endpoints => ['127.0.0.1:2379'], user => 'app', password => 's3cret', timeout => 5);
  $c->put('app/mode', 'on');
  my $kv = $c->get('app/mode');            # { key, value, create_revision, mod_revision, version, lease }
  my $r  = $c->range('app/', prefix => 1, limit => 10);   # { kvs => [...], count, more, revision }
  $c->delete('app/', prefix => 1);

  my $w = $c->watch('app/', prefix => 1, sub { my ($ev) = @_; print "$ev->{type} $ev->{kv}{key}\n" });
  $w->wait(1);                              # run callbacks in this thread; or Concord::dispatch(1)

  my $lease = $c->lease_grant(10);
  my $ka = $lease->keep_alive;              # refreshed in the background
  warn "lost: " . $ka->lost(0) if $ka->lost(0);

  my $r = $c->txn(compare => [ { key => 'app/mode', target => 'value', result => '==', value => 'on' } ],
                  success => [ { put => 'app/mode', value => 'off' } ],
                  failure => [ { get => 'app/mode' } ]);   # { succeeded, revision, responses }

  my $lock = $c->lock('jobs', ttl => 10);  # ->key, ->revision (fencing token), ->unlock
  my $st = $c->status;                      # { version, leader, revision, db_size, ... }
  my $ms = $c->members;                     # [ { id, name, client_urls, peer_urls }, ... ]

  $c->user_add('root', 'pw'); $c->role_add('root'); $c->user_grant_role('root', 'root');
  $c->role_add('app'); $c->role_grant_permission('app', 'readwrite', 'app/', prefix => 1);
  $c->auth_enable;                          # also: user_*/role_* delete, list, get; auth_disable

  eval { $c->put('', 'x') };                # dies with a Concord::Error
  print $@->code, ' ', $@->message;         # 3 etcdserver: key is not provided

=head1 DESCRIPTION

Callbacks of watches run only in the Perl thread that calls
C<< $watch->wait >> or C<Concord::dispatch>; C<< $watch->fd >> is readable
while events wait, for event loops.

=cut
