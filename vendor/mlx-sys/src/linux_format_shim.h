/* cyberfilter patch: GCC 12 has no std::format; mlx-c only formats "{}" placeholders in
 * error messages, so a stream-based stand-in is enough. Force-included on Linux only. */
#pragma once
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#include <sstream>
#include <string>
namespace std {
inline void mlx_sys_fmt(ostringstream& os, const char* f) { os << f; }
template <class T, class... R>
void mlx_sys_fmt(ostringstream& os, const char* f, const T& v, const R&... r) {
  while (*f) {
    if (f[0] == '{' && f[1] == '}') {
      os << v;
      mlx_sys_fmt(os, f + 2, r...);
      return;
    }
    os << *f++;
  }
}
template <class... A>
string format(const char* f, const A&... a) {
  ostringstream os;
  mlx_sys_fmt(os, f, a...);
  return os.str();
}
}  // namespace std
#endif
