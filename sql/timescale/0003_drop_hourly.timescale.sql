-- Hourly rollups (0002_hourly's continuous aggregate and its refresh policy)
-- had no reader but the tests: gone. The retention policies of 0002 stay.
DROP MATERIALIZED VIEW IF EXISTS metrics_hourly;
