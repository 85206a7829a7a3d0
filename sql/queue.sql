-- The pgmq queue that carries one message per pending chunk.
SELECT pgmq.create('heimdall_chunks');
