import type { AlertService } from '../elevation/alert-service.ts';
import type { Job } from './scheduler.ts';

/**
 * Security alerts on the loop (SCHEDULES.alerts): one pass raises what holds now and resolves what
 * went away. Every replica ticks it; a pass takes the alerts lock, so passes run one after another
 * and a later one finds the alerts an earlier one raised (the open-alert index would refuse a
 * second copy anyway), so nothing is raised or announced twice.
 */
export function evaluateAlertsJob(alerts: Pick<AlertService, 'evaluate'>): Job {
  return { name: 'evaluate-alerts', run: () => alerts.evaluate() };
}
