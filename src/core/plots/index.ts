/** SVG plots for reports and the app, pure string building (no DOM, no canvas). */
export { linePlot, rocPlot, type LinePlotOptions, type LineSeries, type RocPlotOptions, type RocSeries } from './line';
export { barChart, type BarChartOptions, type BarSeries } from './bar';
export type { CommonOptions, LegendPosition, RefLine } from './frame';
export { formatTick, linearScale, logScale, logTicks, niceDomain, niceTicks, type Scale } from './scale';
export { esc, MARKERS, PALETTE, svgDataUri, type MarkerShape } from './svg';
