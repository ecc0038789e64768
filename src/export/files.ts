import type { Db } from 'mongodb';

/**
 * The NDJSON files of exports, kept in the database so that any server process serves any file:
 * each file is a run of chunks (`_export_chunks`, _id "job/file/chunk"), written once, read back by
 * _id one at a time (the look-up the embedded engine answers without a scan), so neither writing nor
 * serving a file holds more than one chunk in memory.
 */
export const EXPORT_CHUNKS_COLLECTION = '_export_chunks';

/** Characters of NDJSON per chunk: well below the engines' document size limit. */
export const CHUNK_CHARS = 512 * 1024;

interface ChunkDocument {
  _id: string;
  job: string;
  file: number;
  chunk: number;
  data: string;
}

const chunkId = (job: string, file: number, chunk: number) => `${job}/${file}/${chunk}`;

export class ExportFiles {
  constructor(private readonly db: Db) {}

  private get collection() {
    return this.db.collection<ChunkDocument>(EXPORT_CHUNKS_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.collection.createIndex({ job: 1 });
  }

  async write(job: string, file: number, chunk: number, data: string): Promise<void> {
    await this.collection.insertOne({ _id: chunkId(job, file, chunk), job, file, chunk, data });
  }

  /** A file's text, chunk by chunk. */
  async *read(job: string, file: number, chunks: number): AsyncGenerator<string> {
    for (let chunk = 0; chunk < chunks; chunk++) {
      const doc = await this.collection.findOne({ _id: chunkId(job, file, chunk) });
      if (!doc) throw new Error(`chunk ${chunk} of export file ${job}/${file} is missing`);
      yield doc.data;
    }
  }

  /**
   * Chunks a runner wrote after the progress its job recorded (it stopped between the two writes):
   * removed before the job resumes, so that no resource is exported twice.
   */
  async removeFrom(job: string, file: number, chunk: number): Promise<void> {
    await this.collection.deleteMany({ job, $or: [{ file: { $gt: file } }, { file, chunk: { $gte: chunk } }] });
  }

  async removeJob(job: string): Promise<void> {
    await this.collection.deleteMany({ job });
  }
}
