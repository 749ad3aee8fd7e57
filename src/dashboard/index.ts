/** Public surface of src/dashboard: the usage dashboard as a fastify plugin (see plugin.ts). */
export { registerDashboard, isDashboardUrl, DASHBOARD_PREFIX, type DashboardOptions } from './plugin.js';
export {
  liveStatsFromMetrics,
  type LiveStats,
  type LiveSource,
  type LiveFromMetricsOptions,
  type LiveMetrics,
  type MetricReader,
} from './live.js';
export {
  SqliteRecentRecords,
  PostgresRecentRecords,
  recentRecordsFor,
  recentRecordsForSpec,
  type RecentRecords,
  type RecentQuery,
} from '../usage/index.js';
export { buildModels, buildSummary, parseSummaryQuery, type Summary, type KeyRow, type SummaryQuery } from './data.js';
