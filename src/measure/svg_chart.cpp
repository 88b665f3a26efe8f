#include "measure/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace hearth::measure {
namespace {

// 1, 2 or 5 times a power of ten: tick spacing for about `ticks` steps up to `top`.
double nice_step(double top, int ticks) {
    const double raw = std::max(top, 1e-9) / ticks;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    for (const double m : {1.0, 2.0, 5.0})
        if (raw <= m * magnitude) return m * magnitude;
    return 10 * magnitude;
}

std::string xml_escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace

std::string line_chart_svg(const LineChart& chart) {
    double max_x = 0, max_y = 0;
    for (const ChartSeries& line : chart.series) {
        for (const auto& [x, y] : line.points) {
            max_x = std::max(max_x, x);
            max_y = std::max(max_y, y);
        }
    }
    constexpr double kWidth = 760, kHeight = 440, kLeft = 70, kRight = 250, kTop = 40, kBottom = 50;
    const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
    const double x_step = nice_step(std::max(max_x, 1.0), 5), y_step = nice_step(max_y, 5);
    const double x_top = std::max(x_step, std::ceil(max_x / x_step) * x_step);
    const double y_top = std::max(y_step, std::ceil(max_y / y_step) * y_step);
    auto px = [&](double x) { return kLeft + plot_w * x / x_top; };
    auto py = [&](double y) { return kTop + plot_h * (1 - y / y_top); };

    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n"
        "<text x=\"{2}\" y=\"22\" font-size=\"14\">{3}</text>\n",
        kWidth, kHeight, kLeft, xml_escape(chart.title));
    for (double x = 0; x <= x_top + x_step / 2; x += x_step) {
        svg += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>"
            "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
            px(x), kTop, kTop + plot_h, kTop + plot_h + 16, x);
    }
    for (double y = 0; y <= y_top + y_step / 2; y += y_step) {
        svg += fmt::format(
            "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
            "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
            kLeft, py(y), kLeft + plot_w, kLeft - 6, py(y) + 4, y);
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", kLeft + plot_w / 2,
                       kHeight - 10, xml_escape(chart.x_label));
    svg += fmt::format(
        "<text x=\"16\" y=\"{0:.1f}\" transform=\"rotate(-90 16 {0:.1f})\" text-anchor=\"middle\">"
        "{1}</text>\n",
        kTop + plot_h / 2, xml_escape(chart.y_label));
    static constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                              "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    int index = 0;
    for (const ChartSeries& line : chart.series) {
        if (line.points.empty()) continue;
        std::vector<std::pair<double, double>> points = line.points;
        std::sort(points.begin(), points.end());
        const char* color = kColors[index % std::size(kColors)];
        std::string coordinates;
        for (const auto& [x, y] : points) coordinates += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
        coordinates.pop_back();
        svg += fmt::format(
            "<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
            color, coordinates);
        for (const auto& [x, y] : points)
            svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(x), py(y),
                               color);
        const double legend_y = kTop + 10 + 18 * index;
        svg += fmt::format(
            "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"{3}\" stroke-width=\"2\"/>"
            "<text x=\"{4}\" y=\"{5:.1f}\">{6}</text>\n",
            kLeft + plot_w + 16, legend_y, kLeft + plot_w + 36, color, kLeft + plot_w + 42, legend_y + 4,
            xml_escape(line.label));
        ++index;
    }
    return svg + "</svg>\n";
}

}  // namespace hearth::measure
