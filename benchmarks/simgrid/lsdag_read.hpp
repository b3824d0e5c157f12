/* The .lsdag workload file (format: lsdag.py) read into plain arrays, for sg_dag.cpp. */
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// a small buffered tokenizer (fscanf is too slow for 10^7-line files)
class Reader {
  FILE* f_;
  std::vector<char> buf_ = std::vector<char>(1 << 22);
  size_t pos_ = 0, end_ = 0;
  bool fill()
  {
    if (pos_ < end_)
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    size_t got = std::fread(buf_.data() + end_, 1, buf_.size() - end_ - 1, f_);
    end_ += got;
    buf_[end_] = '\0';
    return got > 0;
  }

public:
  explicit Reader(const char* path) : f_(std::fopen(path, "r"))
  {
    if (!f_)
      throw std::runtime_error(std::string("cannot open ") + path);
    fill();
  }
  ~Reader() { std::fclose(f_); }
  // next whitespace-separated token; skips '#' comment lines
  std::string word()
  {
    for (;;) {
      while (pos_ < end_ && (buf_[pos_] == ' ' || buf_[pos_] == '\n' || buf_[pos_] == '\t' || buf_[pos_] == '\r'))
        pos_++;
      if (pos_ + 256 > end_ && !fill() && pos_ >= end_)
        throw std::runtime_error("unexpected end of file");
      if (buf_[pos_] == '#') {
        while (buf_[pos_] != '\n') {
          pos_++;
          if (pos_ >= end_ && !fill())
            break;
        }
        continue;
      }
      size_t a = pos_;
      while (pos_ < end_ && !std::isspace(static_cast<unsigned char>(buf_[pos_])))
        pos_++;
      return std::string(buf_.data() + a, pos_ - a);
    }
  }
  void skip_ws()
  {
    for (;;) {
      while (pos_ < end_ && std::isspace(static_cast<unsigned char>(buf_[pos_])))
        pos_++;
      if (pos_ + 256 <= end_ || !fill())
        return;
    }
  }
  double num()
  {
    skip_ws();
    char* stop = nullptr;
    double v   = std::strtod(buf_.data() + pos_, &stop);
    if (stop == buf_.data() + pos_)
      throw std::runtime_error("expected a number");
    pos_ = stop - buf_.data();
    return v;
  }
  long long integer()
  {
    skip_ws();
    char* stop  = nullptr;
    long long v = std::strtoll(buf_.data() + pos_, &stop, 10);
    if (stop == buf_.data() + pos_)
      throw std::runtime_error("expected an integer");
    pos_ = stop - buf_.data();
    return v;
  }
  void expect(const char* w)
  {
    std::string got = word();
    if (got != w)
      throw std::runtime_error("expected '" + std::string(w) + "', found '" + got + "'");
  }
};

struct LinkRec {
  int a, b;
  double lat, bw;
  bool duplex;
};
struct Workload {
  double speed = 1.0;
  int units = 0, switches = 0;
  std::vector<LinkRec> links;
  struct Route {
    int src, dst;
    std::vector<std::pair<int, int>> hops;
  };
  std::vector<Route> routes;
  std::vector<double> seconds;
  std::vector<int32_t> unit;
  std::vector<int64_t> src, dst;
  std::vector<double> bytes;
};

static Workload read_lsdag(const char* path)
{
  Reader r(path);
  Workload w;
  r.expect("lsdag");
  if (r.integer() != 1)
    throw std::runtime_error("unsupported lsdag version");
  r.expect("speed");
  w.speed = r.num();
  r.expect("nodes");
  w.units    = (int)r.integer();
  w.switches = (int)r.integer();
  r.expect("links");
  w.links.resize(r.integer());
  for (auto& l : w.links) {
    l.a      = (int)r.integer();
    l.b      = (int)r.integer();
    l.lat    = r.num();
    l.bw     = r.num();
    l.duplex = r.integer() != 0;
  }
  r.expect("routes");
  w.routes.resize(r.integer());
  for (auto& rt : w.routes) {
    rt.src = (int)r.integer();
    rt.dst = (int)r.integer();
    rt.hops.resize(r.integer());
    for (auto& h : rt.hops) {
      h.first  = (int)r.integer();
      h.second = (int)r.integer();
    }
  }
  r.expect("tasks");
  size_t n = r.integer();
  w.seconds.resize(n);
  w.unit.resize(n);
  for (size_t i = 0; i < n; i++) {
    w.seconds[i] = r.num();
    w.unit[i]    = (int32_t)r.integer();
  }
  r.expect("edges");
  size_t m = r.integer();
  w.src.resize(m);
  w.dst.resize(m);
  w.bytes.resize(m);
  for (size_t i = 0; i < m; i++) {
    w.src[i]   = r.integer();
    w.dst[i]   = r.integer();
    w.bytes[i] = r.num();
  }
  r.expect("end");
  return w;
}

