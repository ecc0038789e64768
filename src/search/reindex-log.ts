import type { Db } from 'mongodb';

interface ReindexRecord {
  _id: string;
  /** Version of the SearchParameter whose values are in every document. */
  v: number;
  finishedAt: Date;
}

/**
 * Which runtime SearchParameters have finished reindexing, by version, so that a restart makes them
 * searchable at once instead of walking every collection again; an unfinished one is reindexed anew.
 */
export class ReindexLog {
  constructor(private readonly db: Db) {}

  private get collection() {
    return this.db.collection<ReindexRecord>('_reindex');
  }

  async isDone(url: string, version: number): Promise<boolean> {
    const record = await this.collection.findOne({ _id: url });
    return record?.v === version;
  }

  async markDone(url: string, version: number): Promise<void> {
    await this.collection.replaceOne({ _id: url }, { v: version, finishedAt: new Date() }, { upsert: true });
  }
}
