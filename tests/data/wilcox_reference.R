# Reference table for analysis/judges/wilcoxon.py: R's own wilcox.test on small, tied, zero-heavy and
# large two-sample cases. Regenerate with:  Rscript tests/data/wilcox_reference.R > tests/data/wilcox_reference.csv
# Every row is  wilcox.test(x, y, alternative = alt, conf.int = TRUE, conf.level = level, correct = TRUE)
# with R's defaults otherwise (exact = NULL, tol.root = 1e-4); numbers printed with 17 significant digits.
set.seed(20261204)
cases <- list()
add <- function(kind, x, y) cases[[length(cases) + 1]] <<- list(kind = kind, x = x, y = y)
for (nx in 3:10) for (ny in c(3, 5, 7, 10)) {
  add("small", signif(rnorm(nx, 0.5), 6), signif(rnorm(ny), 6))
}
for (i in 1:12) add("ties", round(rnorm(sample(3:10, 1), 1) * 2), round(rnorm(sample(3:10, 1)) * 2))
for (i in 1:12) {
  zi <- function(n, p) rbinom(n, 1, p) * rpois(n, 2)
  add("zeros", zi(sample(5:30, 1), 0.4), zi(sample(5:30, 1), 0.05))
}
add("zeros", c(0, 0, 0, 0, 1), c(0, 0, 0, 0, 0, 2))
add("small", c(1, 2, 3, 4), c(5, 6, 7, 8.5))
for (n in c(50, 60, 120)) add("large", signif(rlnorm(n, 0.1, 0.3), 8), signif(rlnorm(n + 7, 0, 0.3), 8))
add("large", signif(rnorm(30), 8), signif(rnorm(55, 0.2), 8))
add("large-ties", round(rnorm(70, 0.3), 1), round(rnorm(65), 1))
fmt <- function(v) paste(sprintf("%.17g", v), collapse = " ")
cat("kind,alternative,conf_level,x,y,statistic,p_value,estimate,lower,upper,r_version\n")
for (case in cases) for (alt in c("two.sided", "greater", "less")) for (level in c(0.95, 0.9)) {
  t <- suppressWarnings(wilcox.test(case$x, case$y, alternative = alt, conf.int = TRUE,
                                    conf.level = level, correct = TRUE))
  cat(case$kind, alt, level, fmt(case$x), fmt(case$y), fmt(t$statistic), fmt(t$p.value),
      fmt(t$estimate), fmt(t$conf.int[1]), fmt(t$conf.int[2]), R.version.string, sep = ",")
  cat("\n")
}
