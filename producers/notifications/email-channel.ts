/**
 * Email over SMTP with nodemailer: a text and an HTML body, the Message-ID
 * derived from the notification id (every attempt carries the same one),
 * `List-Unsubscribe` on what a person may turn off, DKIM when configured.
 *
 * An SMTP answer 5xx is permanent (the address or the message is refused);
 * 4xx, a refused connection or a timeout is worth another attempt.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { SmtpConfig } from '../../infra/notify-config.js';
import type { Channel, ChannelResult, Outgoing } from './channel.js';
import { messageIdOf } from './notification-id.js';

/** Nothing from the receiver within this long: the attempt failed. */
const SMTP_TIMEOUT_MS = 30_000;

export class EmailChannel implements Channel {
  readonly name = 'email' as const;
  private readonly transport: Transporter;

  constructor(
    private readonly config: SmtpConfig,
    private readonly appUrl: string,
  ) {
    const dkim = config.dkim ? { domainName: config.dkim.domainName, keySelector: config.dkim.keySelector, privateKey: config.dkim.privateKey.reveal() } : undefined;
    this.transport = nodemailer.createTransport({
      url: config.url.reveal(),
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: SMTP_TIMEOUT_MS,
      ...(dkim ? { dkim } : {}),
    });
  }

  async send(m: Outgoing): Promise<ChannelResult> {
    try {
      await this.transport.sendMail({
        from: this.config.from,
        to: m.to,
        subject: m.subject,
        text: m.text,
        html: m.html,
        messageId: messageIdOf(m.notificationId, this.config.fromDomain),
        headers: { 'X-Relaygrid-Notification': m.notificationId },
        ...(m.optional ? { list: { unsubscribe: { url: `${this.appUrl}/settings/notifications`, comment: 'Notification settings' } } } : {}),
        attachments: m.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
      });
      return { outcome: 'sent' };
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      const error = typeof code === 'number' ? `smtp_${code}` : `smtp_${(err as { code?: string }).code ?? 'error'}`;
      return { outcome: typeof code === 'number' && code >= 500 ? 'permanent' : 'retry', error };
    }
  }

  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }
}
