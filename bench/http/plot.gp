# plot.gp - chart for bench/http/run.sh: requests per server-CPU-second (left)
# and requests per second (right), per workload, for hello, nginx and ceiling.
#   gnuplot -e "datafile='chart.dat'; outfile='chart.png'" plot.gp
if (!exists("datafile")) datafile = 'chart.dat'
if (!exists("outfile")) outfile = 'chart.png'
set terminal pngcairo size 1200,520 font "sans,10"
set output outfile
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
# Log scale: pipelined figures are ten times the others, and ratios read the same everywhere.
set logscale y
set yrange [10:*]
set xtics nomirror
set ytics nomirror
set linetype 1 lc rgb "#d95f02"
set linetype 2 lc rgb "#1b9e77"
set linetype 3 lc rgb "#7570b3"
set multiplot layout 1,2 title "hellepoll hello vs nginx vs ceiling (one core each; median of rounds)"
set title "requests per server-CPU-second (thousands, log scale)"
plot datafile using 2:xtic(1) title "hello", '' using 3 title "nginx", '' using 4 title "ceiling"
set title "requests per second (thousands, log scale; load generator on one core)"
plot datafile using 5:xtic(1) title "hello", '' using 6 title "nginx", '' using 7 title "ceiling"
unset multiplot
