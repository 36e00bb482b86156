"""Demand forecasting models: candidates, rolling-origin selection, forecasts with intervals."""
