/** The one place time is read, so the lifecycle can be tested without waiting for real minutes. */
export type Clock = () => Date;

/** Wall-clock time. */
export const systemClock: Clock = () => new Date();
