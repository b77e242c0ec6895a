# Throughput and p99 latency per scenario and server, from results/plot.dat.
#   gnuplot -e "dat='results/plot.dat'; out='results/latest.png'; title='...'" plot.gp
if (!exists("dat")) dat = 'results/plot.dat'
if (!exists("out")) out = 'results/latest.png'
if (!exists("title")) title = 'clusterd benchmark'

set terminal pngcairo size 1280,900 font "sans,10"
set output out
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top right
set xtics rotate by -20 noenhanced
set multiplot layout 2,1 title title noenhanced

set title "throughput (median req/s, log scale, higher is better)"
set ylabel "thousand req/s"
set logscale y
set yrange [0.5:*]
plot dat using ($2/1000):xtic(1) title "clusterd" lc rgb "#1f77b4", \
     ''  using ($3/1000) title "nginx" lc rgb "#2ca02c", \
     ''  using ($4/1000) title "Node cluster + http" lc rgb "#ff7f0e", \
     ''  using ($5/1000) title "Node cluster + express" lc rgb "#d62728"

set title "p99 latency (median of rounds, ms, log scale, lower is better)"
set ylabel "ms"
set yrange [*:*]
plot dat using 6:xtic(1) title "clusterd" lc rgb "#1f77b4", \
     ''  using 7 title "nginx" lc rgb "#2ca02c", \
     ''  using 8 title "Node cluster + http" lc rgb "#ff7f0e", \
     ''  using 9 title "Node cluster + express" lc rgb "#d62728"
unset multiplot
