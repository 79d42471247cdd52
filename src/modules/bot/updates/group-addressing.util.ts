import type { Message, MessageEntity } from 'telegraf/types';

export interface BotIdentity {
  id: number;
  username: string;
}

/** Group chats, where many people talk and only what is said to the bot is for it. */
export function isGroupChat(chatType: string): boolean {
  return chatType === 'group' || chatType === 'supergroup';
}

/**
 * What the bot should read in a message: the text (or caption) as sent in a private chat; in a group only when the
 * message is for the bot — it mentions the bot's @username (a `mention` entity) or replies to one of the bot's
 * messages — with the bot's mentions taken out, so "@bot a red fox" asks for "a red fox" and is captioned so.
 * Undefined: the message is someone else's conversation; the bot stays silent.
 */
export function textForBot(message: Message, bot: BotIdentity): string | undefined {
  const { text, entities } = textAndEntities(message);
  if (!isGroupChat(message.chat.type)) return text;
  const handle = `@${bot.username}`.toLowerCase();
  const mentions = entities.filter(
    (e) => e.type === 'mention' && text.slice(e.offset, e.offset + e.length).toLowerCase() === handle,
  );
  const repliesToBot = 'reply_to_message' in message && message.reply_to_message?.from?.id === bot.id;
  if (mentions.length === 0 && !repliesToBot) return undefined;
  let stripped = text;
  // From the end, so earlier offsets (UTF-16 code units, like JavaScript strings) stay valid.
  for (const mention of [...mentions].sort((a, b) => b.offset - a.offset)) {
    stripped = stripped.slice(0, mention.offset) + stripped.slice(mention.offset + mention.length);
  }
  return stripped.replace(/[ \t]{2,}/g, ' ').trim();
}

function textAndEntities(message: Message): { text: string; entities: readonly MessageEntity[] } {
  if ('text' in message) return { text: message.text, entities: message.entities ?? [] };
  if ('caption' in message && message.caption !== undefined) {
    return { text: message.caption, entities: message.caption_entities ?? [] };
  }
  return { text: '', entities: [] };
}
