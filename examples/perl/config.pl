#!/usr/bin/env perl
# An application's YAML configuration kept in Concord (or etcd) line by
# line, as the Net::Etcd guide does it for Dancer2: comments and blank lines
# are kept, the file is rebuilt from the store, and the application reloads
# when a line changes.
#
#   perl config.pl store  ENDPOINT APP config.yml   # one key per line: config/APP/000001 ...
#   perl config.pl show   ENDPOINT APP              # the file, rebuilt from the store
#   perl config.pl follow ENDPOINT APP [SECONDS]    # print the file again at each change
use strict;
use warnings;
use Concord;

my ($cmd, $endpoint, $app, $arg) = @ARGV;
die "usage: $0 store|show|follow ENDPOINT APP [FILE|SECONDS]\n" unless $cmd && $endpoint && $app;
my $c = Concord->new(endpoints => [$endpoint], timeout => 10);
my $prefix = "config/$app/";

sub rebuild {
    my $r = $c->range($prefix, prefix => 1);    # keys sort as line numbers
    return (join('', map { "$_->{value}\n" } @{ $r->{kvs} }), $r->{revision});
}

if ($cmd eq 'store') {
    open my $fh, '<', $arg or die "$arg: $!\n";
    my @lines = <$fh>;
    chomp @lines;
    $c->delete($prefix, prefix => 1);
    $c->put(sprintf('%s%06d', $prefix, $_ + 1), $lines[$_]) for 0 .. $#lines;
    print scalar(@lines), " lines stored under $prefix\n";
} elsif ($cmd eq 'show') {
    print((rebuild())[0]);
} elsif ($cmd eq 'follow') {
    my ($text, $rev) = rebuild();
    print "# revision $rev\n$text";
    my $changed = 0;
    # From the revision of the read on: no change between the read and the watch is missed.
    my $w = $c->watch($prefix, prefix => 1, start_revision => $rev + 1, sub { $changed++ });
    my $until = defined $arg ? time + $arg : undef;
    STDOUT->autoflush(1);
    while (!defined $until || time < $until) {
        next unless $w->wait(0.5);
        ($text, $rev) = rebuild();
        print "# reloaded at revision $rev\n$text";
    }
} else {
    die "unknown command $cmd\n";
}
