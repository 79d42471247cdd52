import type { ConsumerGroupName } from './consumer-groups';

/**
 * The consumer names this process reads under, by group, once the transport has leased them: what a role
 * advertises so that peers can hand it work (the gpu worker's advert names its `gpu` consumer).
 */
export class ConsumerDirectory {
  private readonly names = new Map<ConsumerGroupName, string>();
  private readonly listeners: ((group: ConsumerGroupName, name: string) => void)[] = [];

  register(group: ConsumerGroupName, name: string): void {
    this.names.set(group, name);
    for (const listener of this.listeners) listener(group, name);
  }

  nameOf(group: ConsumerGroupName): string | undefined {
    return this.names.get(group);
  }

  /** Called for every consumer registered from now on. */
  onRegistered(listener: (group: ConsumerGroupName, name: string) => void): void {
    this.listeners.push(listener);
  }
}
