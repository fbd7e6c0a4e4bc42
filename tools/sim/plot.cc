// plot.cc - the SVG plot of `umn sim --plot`: invalidation latency against the number of devices, both
// axes logarithmic (devices double; single-pass latency grows with them), one line per mode (p50 solid
// with markers, p99 dashed), the ideal (one device's invalidation, measured in the same run) and the
// 1.25 x ideal target.
#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/core.h>

#include "sim/report.hpp"

namespace umn::cli::sim {
namespace {

using umn::sim::DriverMode;

constexpr double kWidth = 1120, kHeight = 560;
constexpr double kLeft = 90, kRight = 330, kTop = 78, kBottom = 96;  // the legend sits right of the plot

struct Series {
  DriverMode mode;
  const char* label;
  const char* color;
};
constexpr Series kSeries[] = {{DriverMode::kSinglePass, "single-pass", "#d62728"},
                              {DriverMode::kTwoPass, "two-pass", "#1f77b4"},
                              {DriverMode::kMultiplexed, "multiplexed (one shared lock)", "#2ca02c"}};

// Maps devices (log2) and microseconds (log10) to SVG coordinates.
class Scale {
 public:
  explicit Scale(const std::vector<Row>& rows) {
    x_lo_ = std::log2(rows.front().devices);
    x_hi_ = std::log2(rows.back().devices);
    if (x_hi_ - x_lo_ < 1) x_lo_ -= 0.5, x_hi_ += 0.5;
    double lo = 1e300, hi = 0;
    for (const Row& row : rows) {
      lo = std::min(lo, ideal_us(row));
      for (const auto& r : row.results) lo = std::min(lo, r.latency.p50_us), hi = std::max(hi, r.latency.p99_us);
    }
    y_lo_ = std::log10(std::max(lo, 0.1) / 1.5);
    y_hi_ = std::log10(std::max(hi, lo * 2) * 1.5);
  }
  [[nodiscard]] double x(double devices) const {
    return kLeft + (std::log2(devices) - x_lo_) / (x_hi_ - x_lo_) * (kWidth - kLeft - kRight);
  }
  [[nodiscard]] double y(double us) const {
    return kHeight - kBottom - (std::log10(us) - y_lo_) / (y_hi_ - y_lo_) * (kHeight - kTop - kBottom);
  }
  [[nodiscard]] double y_lo() const { return std::pow(10, y_lo_); }
  [[nodiscard]] double y_hi() const { return std::pow(10, y_hi_); }

 private:
  double x_lo_, x_hi_, y_lo_, y_hi_;
};

void axes(std::FILE* out, const Scale& scale, const std::vector<Row>& rows) {
  const double bottom = kHeight - kBottom, right = kWidth - kRight;
  for (double decade = std::pow(10, std::floor(std::log10(scale.y_lo()))); decade < scale.y_hi(); decade *= 10)
    for (double mult : {1.0, 2.0, 5.0}) {
      const double us = decade * mult;
      if (us < scale.y_lo() || us > scale.y_hi()) continue;
      fmt::print(out,
                 R"svg(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#e3e3e3"/>)svg"
                 R"svg(<text x="{:.1f}" y="{:.1f}" text-anchor="end" class="tick">{:g}</text>)svg"
                 "\n",
                 kLeft, scale.y(us), right, scale.y(us), kLeft - 8, scale.y(us) + 4, us);
    }
  for (const Row& row : rows)
    fmt::print(out,
               R"svg(<line x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}" stroke="#e3e3e3"/>)svg"
               R"svg(<text x="{0:.1f}" y="{3:.1f}" text-anchor="middle" class="tick">{4}</text>)svg"
               "\n",
               scale.x(row.devices), kTop, bottom, bottom + 20, row.devices);
  fmt::print(out,
             R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/>)svg"
             "\n",
             kLeft, kTop, right - kLeft, bottom - kTop);
  fmt::print(
      out,
      R"svg(<text x="{:.1f}" y="{:.1f}" text-anchor="middle" class="label">devices (each mirrors the range through its own notifier)</text>)svg"
      "\n",
      (kLeft + right) / 2, bottom + 46);
  fmt::print(
      out,
      R"svg(<text transform="translate(24,{:.1f}) rotate(-90)" text-anchor="middle" class="label">invalidation latency (µs, log scale)</text>)svg"
      "\n",
      (kTop + bottom) / 2);
}

std::string polyline(const Scale& scale, const std::vector<Row>& rows, DriverMode mode, bool p99) {
  std::string points;
  for (const Row& row : rows)
    if (const auto* r = row.find(mode))
      points +=
          fmt::format("{:.1f},{:.1f} ", scale.x(row.devices), scale.y(p99 ? r->latency.p99_us : r->latency.p50_us));
  return points;
}

void ideal_lines(std::FILE* out, const Scale& scale, const std::vector<Row>& rows) {
  std::string ideal, target;
  for (const Row& row : rows) {
    ideal += fmt::format("{:.1f},{:.1f} ", scale.x(row.devices), scale.y(ideal_us(row)));
    target += fmt::format("{:.1f},{:.1f} ", scale.x(row.devices), scale.y(1.25 * ideal_us(row)));
  }
  fmt::print(out,
             R"svg(<polyline points="{}" fill="none" stroke="#444" stroke-width="2" stroke-dasharray="8 5"/>)svg"
             "\n",
             ideal);
  fmt::print(out,
             R"svg(<polyline points="{}" fill="none" stroke="#999" stroke-width="1.2" stroke-dasharray="2 4"/>)svg"
             "\n",
             target);
}

void series(std::FILE* out, const Scale& scale, const std::vector<Row>& rows) {
  for (const Series& s : kSeries) {
    const std::string p50 = polyline(scale, rows, s.mode, false);
    if (p50.empty()) continue;
    fmt::print(
        out,
        R"svg(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.3" stroke-dasharray="5 4" opacity="0.55"/>)svg"
        "\n",
        polyline(scale, rows, s.mode, true), s.color);
    fmt::print(out,
               R"svg(<polyline points="{}" fill="none" stroke="{}" stroke-width="3"/>)svg"
               "\n",
               p50, s.color);
    for (const Row& row : rows)
      if (const auto* r = row.find(s.mode))
        fmt::print(out,
                   R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="4.5" fill="{}"/>)svg"
                   "\n",
                   scale.x(row.devices), scale.y(r->latency.p50_us), s.color);
  }
}

void legend(std::FILE* out) {
  const double x0 = kWidth - kRight + 20;
  double y = kTop + 22;
  auto entry = [&](const char* color, const char* dash, double width, const char* text) {
    fmt::print(
        out,
        R"svg(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{3}" stroke-width="{4}" stroke-dasharray="{5}"/>)svg"
        R"svg(<text x="{6}" y="{7}" class="legend">{8}</text>)svg"
        "\n",
        x0 + 10, y, x0 + 44, color, width, dash, x0 + 52, y + 5, text);
    y += 22;
  };
  fmt::print(out,
             R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="white" stroke="#bbb"/>)svg"
             "\n",
             x0, kTop + 8, kRight - 30, 22 * 6 + 6);
  for (const Series& s : kSeries) entry(s.color, "none", 3, s.label);
  entry("#444", "8 5", 2, "ideal: one device, same run");
  entry("#999", "2 4", 1.2, "target: 1.25 x ideal");
  entry("#666", "5 4", 1.3, "thin dashed: p99 of each mode");
}

// The command that made the plot, on two lines if long (split before an option).
void caption(std::FILE* out, const std::string& command) {
  const size_t split = command.size() > 120 ? command.rfind(" --", 120) : std::string::npos;
  const std::string first = command.substr(0, split);
  const std::string second = split == std::string::npos ? "" : command.substr(split + 1);
  fmt::print(out,
             R"svg(<text x="{}" y="{}" class="cmd">{}</text>)svg"
             "\n",
             kLeft, kHeight - 30, first);
  fmt::print(out,
             R"svg(<text x="{}" y="{}" class="cmd">{}</text>)svg"
             "\n",
             kLeft + 20, kHeight - 14, second);
}

}  // namespace

void write_svg(std::FILE* out, const RunInfo& info, const std::vector<Row>& rows) {
  if (rows.empty()) return;
  const Scale scale(rows);
  fmt::print(
      out,
      R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="Helvetica, Arial, sans-serif">)svg"
      "\n",
      kWidth, kHeight);
  fmt::print(out,
             "<style>.tick{{font-size:12px;fill:#333}} .label{{font-size:14px;fill:#222}} "
             ".legend{{font-size:13px;fill:#222}} .title{{font-size:19px;font-weight:bold;fill:#111}} "
             ".sub{{font-size:12.5px;fill:#555}} .cmd{{font-size:11px;fill:#666;font-family:monospace}}</style>\n");
  fmt::print(out, R"svg(<rect width="100%" height="100%" fill="white"/>)svg"
                  "\n");
  fmt::print(
      out,
      R"svg(<text x="{}" y="30" class="title">Invalidating one range mirrored by D devices: median latency</text>)svg"
      "\n",
      kLeft);
  fmt::print(
      out,
      R"svg(<text x="{}" y="52" class="sub">TLB {} + preemption {} per device ({}), {} ranges, {} invalidations per point</text>)svg"
      "\n",
      kLeft, info.tlb_latency, info.preempt_latency, info.latency_dist, info.ranges, info.invalidations);
  axes(out, scale, rows);
  ideal_lines(out, scale, rows);
  series(out, scale, rows);
  legend(out);
  caption(out, info.command);
  fmt::print(out, "</svg>\n");
}

}  // namespace umn::cli::sim
