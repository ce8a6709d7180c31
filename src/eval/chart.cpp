#include "ohm/eval/chart.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "ohm/core/atomic_file.h"
#include "ohm/core/error.h"
#include "ohm/core/html.h"

#if OHM_HAVE_CAIRO
#include <cairo.h>
#endif

namespace ohm::eval {
namespace {

// The layout, shared by both back ends (pixels).
constexpr int kWidth = 760, kLabelW = 190, kValueW = 90, kBarH = 22, kGap = 6, kTitleH = 34,
              kPanelTitleH = 26, kPanelGap = 14;
constexpr int kBarMax = kWidth - kLabelW - kValueW - 20;

struct Rgb {
  double r, g, b;
};
constexpr Rgb kBar{0.30, 0.47, 0.66}, kAccent{0.89, 0.47, 0.20}, kText{0.13, 0.13, 0.13},
    kMuted{0.40, 0.40, 0.40}, kBack{1, 1, 1};

// What a back end draws: filled rectangles and one-line texts (x at the left, or the right when
// right_align; y is the baseline).
struct Canvas {
  virtual ~Canvas() = default;
  virtual void rect(double x, double y, double w, double h, Rgb c) = 0;
  virtual void text(double x, double y, const std::string& s, double size, bool bold,
                    bool right_align, Rgb c) = 0;
};

int chart_height(const std::vector<BarPanel>& panels) {
  int h = kTitleH;
  for (const auto& p : panels)
    h += kPanelTitleH + static_cast<int>(p.bars.size()) * (kBarH + kGap) + kPanelGap;
  return h + 6;
}

std::string fmt_value(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", std::clamp(decimals, 0, 6), v);
  return buf;
}

void draw(Canvas& c, const std::string& title, const std::vector<BarPanel>& panels) {
  c.rect(0, 0, kWidth, chart_height(panels), kBack);
  c.text(10, 22, title, 16, true, false, kText);
  double y = kTitleH;
  for (const auto& p : panels) {
    c.text(10, y + 17, p.title, 13, true, false, kMuted);
    y += kPanelTitleH;
    // Bars grow from the zero axis: to the right for positive values, to the left for negative
    // ones (the axis then sits right of the labels by the negative range).
    double vmax = 0, vmin = 0;
    for (const auto& b : p.bars) {
      vmax = std::max(vmax, b.second);
      vmin = std::min(vmin, b.second);
    }
    const double span = vmax - vmin;
    const double x0 = kLabelW + (span > 0 ? -vmin / span * kBarMax : 0.0);
    if (vmin < 0) c.rect(x0, y - 2, 1, static_cast<double>(p.bars.size()) * (kBarH + kGap), kMuted);
    for (size_t i = 0; i < p.bars.size(); ++i) {
      const auto& [label, v] = p.bars[i];
      const double w = span > 0 ? v / span * kBarMax : 0;
      c.text(kLabelW - 8, y + kBarH - 6, label, 12, false, true, kText);
      const Rgb col = static_cast<int>(i) == p.highlight ? kAccent : kBar;
      if (w >= 0)
        c.rect(x0, y, std::max(w, 1.0), kBarH, col);
      else
        c.rect(x0 + w, y, -w, kBarH, col);
      c.text(x0 + std::max(w, 0.0) + 6, y + kBarH - 6, fmt_value(v, p.decimals), 12, false, false,
             kText);
      y += kBarH + kGap;
    }
    y += kPanelGap;
  }
}

std::string css(Rgb c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(c.r * 255 + 0.5),
                static_cast<int>(c.g * 255 + 0.5), static_cast<int>(c.b * 255 + 0.5));
  return buf;
}

struct SvgCanvas : Canvas {
  std::ostringstream o;
  void rect(double x, double y, double w, double h, Rgb c) override {
    o << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << h
      << "\" fill=\"" << css(c) << "\"/>\n";
  }
  void text(double x, double y, const std::string& s, double size, bool bold, bool right_align,
            Rgb c) override {
    o << "<text x=\"" << x << "\" y=\"" << y << "\" font-size=\"" << size << "\" fill=\"" << css(c)
      << "\"" << (bold ? " font-weight=\"bold\"" : "")
      << (right_align ? " text-anchor=\"end\"" : "") << ">" << html_escape(s) << "</text>\n";
  }
};

#if OHM_HAVE_CAIRO
struct CairoCanvas : Canvas {
  cairo_t* cr;
  explicit CairoCanvas(cairo_t* c) : cr(c) {}
  void rect(double x, double y, double w, double h, Rgb c) override {
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill(cr);
  }
  void text(double x, double y, const std::string& s, double size, bool bold, bool right_align,
            Rgb c) override {
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    double tx = x;
    if (right_align) {
      cairo_text_extents_t e;
      cairo_text_extents(cr, s.c_str(), &e);
      tx = x - e.x_advance;
    }
    cairo_move_to(cr, tx, y);
    cairo_show_text(cr, s.c_str());
  }
};
#endif

}  // namespace

std::string bar_chart_svg(const std::string& title, const std::vector<BarPanel>& panels) {
  SvgCanvas c;
  draw(c, title, panels);
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
    << chart_height(panels) << "\" font-family=\"sans-serif\">\n"
    << c.o.str() << "</svg>\n";
  return o.str();
}

bool have_png_charts() {
  return OHM_HAVE_CAIRO != 0;
}

void write_bar_chart_png(const std::string& path, const std::string& title,
                         const std::vector<BarPanel>& panels) {
#if OHM_HAVE_CAIRO
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, kWidth, chart_height(panels));
  cairo_t* cr = cairo_create(s);
  CairoCanvas c(cr);
  draw(c, title, panels);
  cairo_destroy(cr);
  cairo_surface_flush(s);
  try {
    write_file_atomic(path, [&](const std::string& tmp) {
      if (cairo_surface_write_to_png(s, tmp.c_str()) != CAIRO_STATUS_SUCCESS)
        throw IoError(ErrorContext().file(path), "cannot write the PNG chart");
    });
  } catch (...) {
    cairo_surface_destroy(s);
    throw;
  }
  cairo_surface_destroy(s);
#else
  (void)title;
  (void)panels;
  throw UnsupportedError(ErrorContext().file(path),
                         "this build has no PNG charts (cairo was not found at configure time; "
                         "Debian: libcairo2-dev)");
#endif
}

}  // namespace ohm::eval
