import type { ReviewService } from '../elevation/review-service.ts';
import type { Job } from './scheduler.ts';

/** Campaigns one run handles per step: each is its own transaction, so a run stays short. */
const BATCH = 20;

/**
 * Access reviews on the loop (SCHEDULES.reviews): open the scheduled next campaigns of recurring
 * reviews, remind reviewers a day before the end, and finish the campaigns whose time is up. Each
 * step claims campaigns with SKIP LOCKED, so replicas never open, remind or finish one twice.
 */
export function accessReviewsJob(reviews: Pick<ReviewService, 'startDue' | 'remindDue' | 'finishDue'>): Job {
  return {
    name: 'access-reviews',
    async run(stopping) {
      let done = await reviews.startDue(BATCH);
      if (!stopping.aborted) done += await reviews.remindDue(BATCH);
      if (!stopping.aborted) done += await reviews.finishDue(BATCH);
      return done;
    },
  };
}
