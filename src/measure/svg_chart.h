// Line charts as SVG for `hearth bench --plot`: a title, axes from 0 with round ticks, one
// coloured line with dots per series, a legend on the right. Plain SVG 1.1, no scripts or fonts,
// so browsers, Inkscape and GitHub all show it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hearth::measure {

struct ChartSeries {
    std::string label;
    std::vector<std::pair<double, double>> points;  // (x, y); drawn left to right
};

struct LineChart {
    std::string title;
    std::string x_label;
    std::string y_label;
    std::vector<ChartSeries> series;  // legend order
};

std::string line_chart_svg(const LineChart& chart);

}  // namespace hearth::measure
