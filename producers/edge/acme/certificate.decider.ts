/**
 * A site's ACME certificate history (`<ns>.evt.edge.certificate.<siteId>`):
 * each certificate the fleet's one ACME leader obtained, and each failed
 * order in between, counted, with when to try again. The counting lives
 * here, in the log, not in the leader's memory: a new leader after a crash
 * keeps the backoff, and the failure event is the operator's notification.
 */
import type { DomainEvent } from '../../../contracts/envelope.js';
import type { Decider } from '../../decider.js';
import { nextRetryAt, renewalDueAt } from './renewal.js';

export type CertificateEventKey = 'edge.CertificateIssued' | 'edge.CertificateRenewalFailed';

export interface CertificateState {
  serial: string | null;
  notAfter: Date | null;
  /** Failed orders since the last certificate. */
  failures: number;
}

/** The CA's and nginx's messages are short; a runaway one is cut, not stored whole. */
export const MAX_FAILURE_CHARS = 2_000;

export type CertificateCommand =
  | { type: 'RecordIssued'; siteId: string; domains: string[]; serial: string; notBefore: Date; notAfter: Date; at: Date }
  | { type: 'RecordFailure'; siteId: string; domains: string[]; error: string; at: Date; retryBaseMs?: number };

type E = DomainEvent<CertificateEventKey>;

function decide(command: CertificateCommand, state: CertificateState): E[] {
  const { siteId, domains, at } = command;
  if (command.type === 'RecordIssued') {
    // The same certificate recorded twice (a leader that died between the store and the event, then its successor): once.
    if (state.serial === command.serial) return [];
    const { serial, notBefore, notAfter } = command;
    return [{ type: 'edge.CertificateIssued', data: { siteId, domains, serial, notBefore, notAfter, renewAt: renewalDueAt(notBefore, notAfter), replacedSerial: state.serial, issuedAt: at } }];
  }
  const attempt = state.failures + 1;
  return [
    {
      type: 'edge.CertificateRenewalFailed',
      data: { siteId, domains, attempt, error: command.error.slice(0, MAX_FAILURE_CHARS), retryAt: nextRetryAt(attempt, at, command.retryBaseMs), currentNotAfter: state.notAfter, failedAt: at },
    },
  ];
}

function evolve(state: CertificateState, event: E): CertificateState {
  switch (event.type) {
    case 'edge.CertificateIssued':
      return { serial: event.data.serial, notAfter: event.data.notAfter, failures: 0 };
    case 'edge.CertificateRenewalFailed':
      return { ...state, failures: event.data.attempt };
  }
}

export const certificateDecider: Decider<CertificateState, CertificateCommand, CertificateEventKey> = {
  initialState: { serial: null, notAfter: null, failures: 0 },
  decide,
  evolve,
};
