import type { ConsumerGroupName } from './consumer-groups';

/** A consumer of this process: its leased name and how much it holds now (running and waiting entries). */
export interface LocalConsumer {
  readonly name: string;
  held(): number;
}

/**
 * The consumers this process reads under, by group, while they read: what a role advertises so that peers can
 * hand it work (the gpu worker's advert names its `gpu` consumer and its load). A consumer leaves the directory
 * when it starts closing, so peers stop handing it work before it stops taking it.
 */
export class ConsumerDirectory {
  private readonly consumers = new Map<ConsumerGroupName, LocalConsumer>();
  private readonly listeners: ((group: ConsumerGroupName) => void)[] = [];

  register(group: ConsumerGroupName, consumer: LocalConsumer): void {
    this.consumers.set(group, consumer);
    this.changed(group);
  }

  unregister(group: ConsumerGroupName): void {
    if (this.consumers.delete(group)) this.changed(group);
  }

  get(group: ConsumerGroupName): LocalConsumer | undefined {
    return this.consumers.get(group);
  }

  /** Called whenever a consumer joins or leaves. */
  onChange(listener: (group: ConsumerGroupName) => void): void {
    this.listeners.push(listener);
  }

  private changed(group: ConsumerGroupName): void {
    for (const listener of this.listeners) listener(group);
  }
}
