"""The golden set: curated cases replayed nightly and compared with live traffic."""
