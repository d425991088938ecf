// @authbridge/protocol: the wire types (generated) and the typed Node client.
export * from './protocol';
export * from './client';
