import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import type { AlertView } from '../elevation/alert-repository.ts';
import { loadAlertSettings } from '../elevation/alert-repository.ts';
import type { AlertService } from '../elevation/alert-service.ts';
import type { Principal } from '../elevation/principal-repository.ts';
import {
  claimSharedMessage,
  completeSharedMessage,
  findAlertMessages,
  noteChatMessage,
  releaseSharedMessage,
  saveChatMessage,
} from './chat-message-repository.ts';
import type { Notification } from './chat-platform.ts';
import { alertCard, type Message } from './messages.ts';

const ALERT_CARD = 'alert_card';
/**
 * A channel card claimed this long ago and still not posted was left by a delivery that died
 * mid-way (a post takes seconds at most); another admin's notification may take it over.
 */
const CLAIM_STALE_MS = 60_000;

/** Where a message went: enough to update it later. */
export interface Posted {
  channel: string;
  messageId: string;
  /** What the platform needs besides (Teams: the service URL). */
  data?: Record<string, unknown>;
}

/** How one platform posts and updates alert cards. */
export interface AlertSends {
  platform: 'slack' | 'teams';
  /** Posts to the admin channel (Slack channel id, Teams conversation id). */
  toChannel(channel: string, message: Message): Promise<Posted>;
  /** Posts to the admin's own chat with the bot; `no_identity` when they have no account here. */
  toPerson(recipient: Principal, message: Message): Promise<Posted | 'no_identity'>;
  /** Replaces a posted message. */
  update(copy: Posted, message: Message): Promise<void>;
}

/**
 * The outbox kinds `alert_raised` and `alert_resolved` on one platform. With an admin channel
 * set for it (policy `alerts.channel`), a raised alert is posted there once, whichever admin's
 * notification gets there first, on whichever replica (the shared-message claim); without one,
 * each admin gets it in their own chat. A resolution updates every copy in place (the channel's
 * once) to show who resolved it and how, so no stale button stays. Cards always show the alert
 * as it is at delivery time.
 */
export function createAlertDelivery(
  deps: { db: Db; clock: Clock; alerts: Pick<AlertService, 'get'> },
  sends: AlertSends,
) {
  const { db } = deps;
  const { platform } = sends;

  async function raised(n: Notification, recipient: Principal, alert: AlertView) {
    const channel = (await loadAlertSettings(db)).channel[platform];
    if (!channel) {
      const at = await sends.toPerson(recipient, alertCard(alert));
      if (at === 'no_identity') return at;
      await saveChatMessage(db, {
        platform,
        alertId: alert.id,
        recipientId: recipient.id,
        channel: at.channel,
        messageId: at.messageId,
        purpose: ALERT_CARD,
        data: at.data ?? {},
      });
      return 'sent' as const;
    }
    const now = deps.clock();
    const claim = await claimSharedMessage(db, {
      platform,
      alertId: alert.id,
      purpose: ALERT_CARD,
      channel,
      claimant: n.id,
      now,
      staleBefore: new Date(now.getTime() - CLAIM_STALE_MS),
    });
    // Posted already, or being posted for another admin's notification: this one is done.
    if (!claim) return 'sent' as const;
    let at: Posted;
    try {
      at = await sends.toChannel(channel, alertCard(alert));
      await completeSharedMessage(db, claim, at);
    } catch (error) {
      await releaseSharedMessage(db, claim).catch(() => {});
      throw error;
    }
    // Resolved while it was being posted: the resolution found no card to update, so update it here.
    const latest = await deps.alerts.get(alert.id);
    if (latest.resolvedAt && !alert.resolvedAt) {
      await sends.update(at, alertCard(latest));
      await noteChatMessage(db, claim, { resolved: true });
    }
    return 'sent' as const;
  }

  async function resolved(recipient: Principal, alert: AlertView) {
    const copies = await findAlertMessages(db, { platform, alertId: alert.id, recipientId: recipient.id });
    for (const copy of copies) {
      // The channel's card is every admin's: the first of their notifications updates it.
      if (copy.recipientId === null && copy.data.resolved === true) continue;
      await sends.update(copy, alertCard(alert));
      if (copy.recipientId === null) await noteChatMessage(db, copy.id, { resolved: true });
    }
    return 'sent' as const;
  }

  /** Delivers one alert notification to one admin (or to the channel on their behalf). */
  return async function deliverAlert(n: Notification, recipient: Principal): Promise<'sent' | 'no_identity'> {
    const alert = await deps.alerts.get(String(n.data.alertId ?? ''));
    return n.kind === 'alert_resolved' ? resolved(recipient, alert) : raised(n, recipient, alert);
  };
}
