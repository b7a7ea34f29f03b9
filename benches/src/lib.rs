//! Load tools and benchmarks of kolabmeet; see `src/bin/`.
