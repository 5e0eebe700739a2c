# The config example end to end: store a YAML file with comments and blank
# lines, rebuild it unchanged, and see a change to one line reloaded.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use FindBin;
use Time::HiRes qw(sleep);
use Concord;

my $bin = $ENV{CONCORD_BIN} or plan skip_all => 'CONCORD_BIN is not set';
my $port = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)->sockport;
my $dir = tempdir(CLEANUP => 1);
my $url = "http://127.0.0.1:$port";
my $pid = fork // die;
if (!$pid) { open STDERR, '>', '/dev/null'; exec $bin, '--data-dir', "$dir/d", '--listen-client-urls', $url,
        '--advertise-client-urls', $url; exit 127 }
END { kill 'TERM', $pid if $pid; waitpid $pid, 0 if $pid }
for (1 .. 200) { last if IO::Socket::INET->new("127.0.0.1:$port"); sleep 0.05 }

my $yaml = "# Dancer2 settings\nappname: \"shop\"\n\nlogger: \"console\"\n  # nested comment\nsession: \"YAML\"\n";
open my $fh, '>', "$dir/config.yml" or die;
print $fh $yaml;
close $fh;
my $script = "$FindBin::Bin/config.pl";
my @perl = ($^X, map { "-I$_" } @INC);
like(qx(@perl $script store 127.0.0.1:$port shop $dir/config.yml), qr/^6 lines stored/, 'stored line by line');
is(qx(@perl $script show 127.0.0.1:$port shop), $yaml, 'rebuilt unchanged: comments and blank lines kept');

open my $follow, '-|', @perl, $script, 'follow', "127.0.0.1:$port", 'shop', '4' or die;
my $first = '';
while (my $l = <$follow>) { $first .= $l; last if $l =~ /^session/ }
like($first, qr/^# revision \d+\n\Q$yaml\E$/, 'follow prints the file');
Concord->new(endpoints => ["127.0.0.1:$port"])->put('config/shop/000004', 'logger: "file"');
my $reloaded = '';
while (my $l = <$follow>) { $reloaded .= $l; last if $l =~ /^session/ }
like($reloaded, qr/^# reloaded at revision \d+\n/, 'a change is reloaded');
like($reloaded, qr/^logger: "file"$/m, 'with the new line');
close $follow;
done_testing;
