import type { types } from '@slack/bolt';
import type { Action, Block, Form, Input, Message } from '../messages.ts';
import { ACTION, BLOCK, INPUT_ACTION, VIEW } from './ids.ts';

/** Block Kit as Slack takes it (plain objects; Slack validates). */
type SlackBlock = Record<string, unknown>;

const plain = (text: string, max = 3000) => ({ type: 'plain_text', text: clip(text, max), emoji: true });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text: clip(text, 3000) });
// Slack refuses texts over its limits; a clipped text is better than a failed message.
const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function button(action: Action): SlackBlock {
  return {
    type: 'button',
    action_id: ACTION[action.name],
    text: plain(action.label, 75),
    value: action.value,
    ...(action.style ? { style: action.style } : {}),
  };
}

/** Neutral blocks as Block Kit blocks. */
export function renderBlocks(blocks: Block[]): SlackBlock[] {
  const out: SlackBlock[] = [];
  for (const block of blocks) {
    switch (block.type) {
      case 'header':
        out.push({ type: 'header', text: plain(block.text, 150) });
        break;
      case 'text': {
        const actions = block.actions ?? [];
        if (actions.length === 1 && actions[0]) {
          out.push({ type: 'section', text: mrkdwn(block.text), accessory: button(actions[0]) });
        } else {
          out.push({ type: 'section', text: mrkdwn(block.text) });
          if (actions.length > 1) out.push({ type: 'actions', elements: actions.map(button) });
        }
        break;
      }
      case 'fields':
        out.push({
          type: 'section',
          fields: block.fields.slice(0, 10).map(([label, value]) => mrkdwn(`*${label}*\n${value}`)),
        });
        break;
      case 'context':
        out.push({ type: 'context', elements: [mrkdwn(block.text)] });
        break;
      case 'divider':
        out.push({ type: 'divider' });
        break;
      case 'actions':
        out.push({ type: 'actions', elements: block.actions.map(button) });
        break;
      case 'link':
        out.push({
          type: 'actions',
          elements: [
            {
              type: 'button',
              action_id: ACTION.verifyIdentity,
              text: plain(block.label, 75),
              url: block.url,
              style: 'primary',
            },
          ],
        });
        break;
    }
  }
  // Slack allows 50 blocks per message; the board says so rather than failing.
  return out.length > 50 ? [...out.slice(0, 49), { type: 'context', elements: [mrkdwn('…and more')] }] : out;
}

/** A message as `chat.postMessage` / `chat.update` / ephemeral arguments. */
export function renderMessage(message: Message): { text: string; blocks: SlackBlock[] } {
  return { text: clip(message.text, 3000), blocks: renderBlocks(message.blocks) };
}

function element(input: Input): SlackBlock {
  const e = input.element;
  switch (e.type) {
    case 'text':
      return {
        type: 'plain_text_input',
        action_id: INPUT_ACTION,
        multiline: e.multiline ?? false,
        ...(e.initial ? { initial_value: e.initial } : {}),
        ...(e.maxLength ? { max_length: e.maxLength } : {}),
        ...(e.placeholder ? { placeholder: plain(e.placeholder, 150) } : {}),
      };
    case 'select': {
      const options = e.options.slice(0, 100).map((o) => ({ text: plain(o.label, 75), value: o.value }));
      if (e.multi) return { type: 'multi_static_select', action_id: INPUT_ACTION, options };
      const initial = options.find((o) => o.value === e.initial);
      return {
        type: 'static_select',
        action_id: INPUT_ACTION,
        options,
        ...(initial ? { initial_option: initial } : {}),
      };
    }
    case 'datetime':
      return {
        type: 'datetimepicker',
        action_id: INPUT_ACTION,
        ...(e.initial ? { initial_date_time: Math.floor(e.initial.getTime() / 1000) } : {}),
      };
    case 'users':
      return e.multi
        ? {
            type: 'multi_users_select',
            action_id: INPUT_ACTION,
            ...(e.initial?.length ? { initial_users: e.initial } : {}),
          }
        : {
            type: 'users_select',
            action_id: INPUT_ACTION,
            ...(e.initial?.[0] ? { initial_user: e.initial[0] } : {}),
          };
  }
}

/** A form as a modal view for `views.open` / `views.update` / `views.push`. */
export function renderModal(form: Form): types.ModalView {
  const inputs = form.inputs.map((input) => ({
    type: 'input',
    block_id: BLOCK[input.name],
    optional: input.optional ?? false,
    label: plain(input.label, 2000),
    ...(input.hint ? { hint: plain(input.hint, 2000) } : {}),
    element: element(input),
  }));
  return {
    type: 'modal',
    callback_id: VIEW[form.name],
    private_metadata: form.subject,
    title: plain(form.title, 24),
    close: plain(form.submit ? 'Cancel' : 'Close', 24),
    ...(form.submit ? { submit: plain(form.submit, 24) } : {}),
    blocks: [...renderBlocks(form.blocks), ...inputs].slice(0, 100),
  } as unknown as types.ModalView;
}

/** The App Home tab from a message (the board). */
export function renderHome(message: Message): types.HomeView {
  return { type: 'home', blocks: renderBlocks(message.blocks) } as unknown as types.HomeView;
}

/** One submitted view's values by block id, as plain strings (user pickers and multi-selects: comma-joined). */
export function formValues(state: {
  values: Record<string, Record<string, unknown>>;
}): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [blockId, actions] of Object.entries(state.values)) {
    const v = actions[INPUT_ACTION] as
      | {
          value?: string | null;
          selected_option?: { value: string } | null;
          selected_options?: { value: string }[];
          selected_date_time?: number | null;
          selected_user?: string | null;
          selected_users?: string[];
        }
      | undefined;
    if (!v) continue;
    out[blockId] =
      v.value ??
      v.selected_option?.value ??
      (v.selected_date_time ? String(v.selected_date_time) : undefined) ??
      v.selected_user ??
      (v.selected_users ? v.selected_users.join(',') : undefined) ??
      (v.selected_options ? v.selected_options.map((o) => o.value).join(',') : undefined);
  }
  return out;
}
