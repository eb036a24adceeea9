import type { Action, ActionName, Block, Form, Input, Message } from '../messages.ts';

/**
 * Platform-neutral messages and forms (messages.ts) as Adaptive Cards 1.5, plain typed JSON.
 *
 * Buttons: actions that change something are `Action.Execute` (an `adaptiveCard/action` invoke
 * whose answer replaces the card in place); actions that need a form are `Action.Submit` with
 * `msteams.type = task/fetch` (Teams opens a dialog). Inside a dialog every button and the form's
 * submit are `Action.Submit` (a `task/submit` invoke). A link (the step-up's *Verify your identity*)
 * is an `Action.OpenUrl`, in messages and dialogs alike. The server trusts none of the data beyond
 * "which thing": who may act is checked on every invoke.
 */

/** An Adaptive Card element or action, as JSON. */
export type CardElement = Record<string, unknown>;

/** A whole Adaptive Card. */
export interface AdaptiveCard {
  type: 'AdaptiveCard';
  $schema: string;
  version: '1.5';
  body: CardElement[];
  actions?: CardElement[];
  refresh?: { action: CardElement; userIds?: string[] };
  msteams?: Record<string, unknown>;
}

/** The attachment content type of an Adaptive Card. */
export const CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

/** Buttons that open a dialog rather than act at once. */
export const DIALOG_ACTIONS: ReadonlySet<ActionName> = new Set([
  'activate',
  'extend',
  'approveWithComment',
  'deny',
  'reviewKeep',
  'reviewRemove',
]);

/** The verb of the automatic refresh of an approver card. */
export const REFRESH_VERB = 'refreshApproval';

/** What a dialog opener carries: `dialog` names what to open, `value` its subject. */
export interface DialogOpenData {
  dialog: string;
  value: string;
}

/** What a dialog's buttons and submit carry back in `task/submit`. */
export interface DialogSubmitData {
  form?: string;
  subject?: string;
  action?: string;
  value?: string;
  [input: string]: unknown;
}

/** `*bold*` (Slack style, the neutral model's) → `**bold**`; emoji codes the model uses → emoji. */
export function markdown(text: string): string {
  return text.replace(/(^|[\s(“"])\*([^*\n]+)\*(?=$|[\s).,:;!?”"])/g, '$1**$2**').replace(/:warning:/g, '⚠️');
}

const textBlock = (text: string, extra: CardElement = {}): CardElement => ({
  type: 'TextBlock',
  text: markdown(text),
  wrap: true,
  ...extra,
});

function button(action: Action, where: 'message' | 'dialog'): CardElement {
  const style =
    action.style === 'primary'
      ? { style: 'positive' }
      : action.style === 'danger'
        ? { style: 'destructive' }
        : {};
  if (where === 'dialog') {
    return {
      type: 'Action.Submit',
      title: action.label,
      data: { action: action.name, value: action.value },
      ...style,
    };
  }
  if (DIALOG_ACTIONS.has(action.name)) return dialogButton(action.label, action.name, action.value, style);
  return {
    type: 'Action.Execute',
    title: action.label,
    verb: action.name,
    data: { value: action.value },
    ...style,
  };
}

/** A button that opens a dialog (`task/fetch`); `prefill` rides along for the form. */
export function dialogButton(
  title: string,
  dialog: string,
  value: string,
  extra: CardElement = {},
  prefill: Record<string, unknown> = {},
): CardElement {
  const data: DialogOpenData & { msteams: { type: 'task/fetch' } } = {
    ...prefill,
    msteams: { type: 'task/fetch' },
    dialog,
    value,
  };
  return { type: 'Action.Submit', title, data, ...extra };
}

/** Hosts show at most five buttons in a row (the parser refuses more): longer rows wrap. */
const MAX_ACTIONS = 5;

function actionSets(actions: Action[], where: 'message' | 'dialog'): CardElement[] {
  const sets: CardElement[] = [];
  for (let i = 0; i < actions.length; i += MAX_ACTIONS)
    sets.push({ type: 'ActionSet', actions: actions.slice(i, i + MAX_ACTIONS).map((a) => button(a, where)) });
  return sets;
}

function renderBlocks(blocks: Block[], where: 'message' | 'dialog'): CardElement[] {
  const out: CardElement[] = [];
  let separate = false;
  const push = (element: CardElement) => {
    out.push(separate ? { ...element, separator: true, spacing: 'Medium' } : element);
    separate = false;
  };
  for (const block of blocks) {
    switch (block.type) {
      case 'header':
        push(textBlock(block.text, { size: 'Large', weight: 'Bolder' }));
        break;
      case 'text':
        push(textBlock(block.text));
        if (block.actions && block.actions.length > 0) out.push(...actionSets(block.actions, where));
        break;
      case 'fields':
        push({ type: 'FactSet', facts: block.fields.map(([title, value]) => ({ title, value })) });
        break;
      case 'context':
        push(textBlock(block.text, { isSubtle: true, size: 'Small' }));
        break;
      case 'divider':
        separate = true;
        break;
      case 'actions': {
        const [first, ...rest] = actionSets(block.actions, where);
        if (first) push(first);
        out.push(...rest);
        break;
      }
      case 'link':
        // Opens the browser (the step-up sign-in); nothing comes back to the bot from the click.
        push({
          type: 'ActionSet',
          actions: [{ type: 'Action.OpenUrl', title: block.label, url: block.url, style: 'positive' }],
        });
        break;
    }
  }
  return out;
}

const card = (body: CardElement[], extra: Partial<AdaptiveCard> = {}): AdaptiveCard => ({
  type: 'AdaptiveCard',
  $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
  version: '1.5',
  body,
  msteams: { width: 'Full' },
  ...extra,
});

/** A message as a card; `refresh` makes Teams fetch the current card when these users see it. */
export function renderMessage(
  message: Message,
  options: { refresh?: { activationId: string; userIds: string[] }; notice?: string } = {},
): AdaptiveCard {
  const body = renderBlocks(message.blocks, 'message');
  if (options.notice) body.unshift(textBlock(options.notice, { color: 'Attention', weight: 'Bolder' }));
  if (body.length === 0) body.push(textBlock(message.text));
  return card(
    body,
    options.refresh
      ? {
          refresh: {
            action: {
              type: 'Action.Execute',
              verb: REFRESH_VERB,
              data: { value: options.refresh.activationId },
            },
            userIds: options.refresh.userIds.slice(0, 60),
          },
        }
      : {},
  );
}

/** The message activity that carries a card (the summary is the notification text). */
export function cardActivity(message: Message, adaptive: AdaptiveCard = renderMessage(message)) {
  return {
    type: 'message' as const,
    summary: message.text.replace(/\*/g, ''),
    attachments: [{ contentType: CARD_CONTENT_TYPE, content: adaptive }],
  };
}

/** Dates in dialogs are UTC: a date and a time input per instant. */
const DATE_SUFFIX = 'Date';
const TIME_SUFFIX = 'Time';

function renderInput(input: Input, value: unknown, error: string | undefined): CardElement[] {
  const label = `${input.label}${input.optional ? ' (optional)' : ''}`;
  const required = input.optional ? {} : { isRequired: true, errorMessage: `${input.label} is required.` };
  const out: CardElement[] = [];
  const el = input.element;
  switch (el.type) {
    case 'text':
      out.push({
        type: 'Input.Text',
        id: input.name,
        label,
        isMultiline: el.multiline ?? false,
        ...(el.maxLength ? { maxLength: el.maxLength } : {}),
        ...(el.placeholder ? { placeholder: el.placeholder } : {}),
        value: typeof value === 'string' ? value : (el.initial ?? ''),
        ...required,
      });
      break;
    case 'select':
      out.push({
        type: 'Input.ChoiceSet',
        id: input.name,
        label,
        style: 'compact',
        ...(el.multi ? { isMultiSelect: true } : {}),
        choices: el.options.map((o) => ({ title: o.label, value: o.value })),
        // A multi-select starts empty; its value comes back as the picked values, comma-separated.
        value:
          typeof value === 'string' ? value : (el.initial ?? (el.multi ? '' : (el.options[0]?.value ?? ''))),
        ...required,
      });
      break;
    case 'datetime': {
      const at = typeof value === 'string' && value ? new Date(value) : el.initial;
      const iso = at && !Number.isNaN(at.getTime()) ? at.toISOString() : '';
      out.push(
        {
          type: 'Input.Date',
          id: `${input.name}${DATE_SUFFIX}`,
          label: `${label}, date (UTC)`,
          value: iso.slice(0, 10),
        },
        {
          type: 'Input.Time',
          id: `${input.name}${TIME_SUFFIX}`,
          label: `${input.label}, time (UTC)`,
          value: iso.slice(11, 16),
        },
      );
      break;
    }
    case 'users':
      // Teams identifies people by email here: its people picker needs Graph permissions.
      out.push({
        type: 'Input.Text',
        id: input.name,
        label: `${label}: email${el.multi ? 's, comma-separated' : ''}`,
        value: typeof value === 'string' ? value : (el.initial ?? []).join(', '),
        ...required,
      });
      break;
  }
  if (input.hint) out.push(textBlock(input.hint, { isSubtle: true, size: 'Small', spacing: 'None' }));
  if (error)
    out.push(textBlock(`⚠️ ${error}`, { color: 'Attention', spacing: 'None', id: `${input.name}Error` }));
  return out;
}

/**
 * A form as a dialog card. `values` (the last submission) keeps what the person typed; `errors`
 * (field → message) shows each problem under its field, as Slack shows them inline.
 */
export function renderForm(
  form: Form,
  options: { values?: Record<string, unknown>; errors?: Record<string, string>; notice?: string } = {},
): AdaptiveCard {
  const values = options.values ?? {};
  const body = renderBlocks(form.blocks, 'dialog');
  if (options.notice) body.unshift(textBlock(options.notice, { color: 'Attention', weight: 'Bolder' }));
  for (const input of form.inputs) {
    const value = input.element.type === 'datetime' ? joinDateTime(values, input.name) : values[input.name];
    body.push(...renderInput(input, value, options.errors?.[input.name]));
  }
  const formErrors = Object.entries(options.errors ?? {}).filter(
    ([field]) => !form.inputs.some((i) => i.name === field),
  );
  for (const [, message] of formErrors) body.push(textBlock(`⚠️ ${message}`, { color: 'Attention' }));
  if (body.length === 0) body.push(textBlock(form.title));
  const submit = form.submit
    ? [
        {
          type: 'Action.Submit',
          title: form.submit,
          style: 'positive',
          data: { form: form.name, subject: form.subject },
        },
      ]
    : [];
  return card(body, submit.length > 0 ? { actions: submit } : {});
}

/** The ISO instant a date + time pair of a submitted dialog names (UTC), '' when empty. */
export function joinDateTime(values: Record<string, unknown>, name: string): string {
  const date = values[`${name}${DATE_SUFFIX}`];
  if (typeof date !== 'string' || !date) return typeof values[name] === 'string' ? String(values[name]) : '';
  const time = values[`${name}${TIME_SUFFIX}`];
  return `${date}T${typeof time === 'string' && time ? time : '00:00'}:00.000Z`;
}

/** A `task/fetch` / `task/submit` answer that shows (or keeps showing) a dialog. */
export function dialogResponse(title: string, adaptive: AdaptiveCard, size: 'medium' | 'large' = 'medium') {
  return {
    task: {
      type: 'continue' as const,
      value: {
        title,
        width: size,
        height: size,
        card: { contentType: CARD_CONTENT_TYPE, content: adaptive },
      },
    },
  };
}

/** A dialog showing a form, with the person's last values and errors when re-shown. */
export function formDialog(
  form: Form,
  options: { values?: Record<string, unknown>; errors?: Record<string, string>; notice?: string } = {},
) {
  return dialogResponse(form.title, renderForm(form, options), form.inputs.length > 3 ? 'large' : 'medium');
}

/** A `task/fetch` / `task/submit` answer that shows a line (and closes the form). */
export const dialogMessage = (text: string) => ({ task: { type: 'message' as const, value: text } });

/** An `adaptiveCard/action` answer that replaces the card. */
export const cardResponse = (adaptive: AdaptiveCard) => ({
  statusCode: 200,
  type: CARD_CONTENT_TYPE,
  value: adaptive,
});

/** An `adaptiveCard/action` answer that shows a line and leaves the card as it is. */
export const messageResponse = (text: string) => ({
  statusCode: 200,
  type: 'application/vnd.microsoft.activity.message',
  value: text,
});
