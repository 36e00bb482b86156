"""The forecasting calendar: season, horizon, history and cross-validation windows.

Kept apart from ``models`` (which imports statsforecast and statsmodels, ~1.5 s) so the assets'
definitions, which need these numbers when the code location loads, do not pay for the models
until an asset actually fits one.
"""

SEASON = 7  # days: demand follows the school week
HORIZON = 28  # days ahead in every forecast vintage
LEVELS = (80, 95)
HISTORY_DAYS = 365
CV_WINDOWS = 4  # rolling origins, one week apart, the last one ending on the as-of date
CV_STEP = 7
