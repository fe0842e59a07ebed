/** The user aggregate (`<ns>.evt.identity.user.<id>`). */
import { DomainError, type Decider } from '../decider.js';

export interface UserState {
  registered: boolean;
  email: string | null;
}

export type UserCommand = {
  type: 'RegisterUser';
  userId: string;
  email: string;
  displayName: string | null;
  at: Date;
};

export const userDecider: Decider<UserState, UserCommand, 'identity.UserRegistered'> = {
  initialState: { registered: false, email: null },
  decide(command, state) {
    switch (command.type) {
      case 'RegisterUser':
        if (state.registered) throw new DomainError('user_exists', `user ${command.userId} is already registered`);
        return [
          {
            type: 'identity.UserRegistered',
            data: { userId: command.userId, email: command.email, displayName: command.displayName, registeredAt: command.at },
          },
        ];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'identity.UserRegistered':
        return { registered: true, email: event.data.email };
    }
  },
};
