//! Who is in the room, in entry order, as a task follows it through the client's notices.

use hearth_client::User;

#[derive(Default)]
pub struct Roster {
    users: Vec<User>,
}

impl Roster {
    /// A user entered (again: moved to the end, the newest entry).
    pub fn entered(&mut self, u: &User) {
        self.users.retain(|x| x.userid != u.userid);
        self.users.push(u.clone());
    }

    /// A user's publications changed (an update of someone not seen yet counts as an entry).
    pub fn updated(&mut self, u: &User) {
        match self.users.iter_mut().find(|x| x.userid == u.userid) {
            Some(x) => *x = u.clone(),
            None => self.users.push(u.clone()),
        }
    }

    pub fn exited(&mut self, user: &str) {
        self.users.retain(|x| x.userid != user);
    }

    pub fn get(&self, user: &str) -> Option<&User> {
        self.users.iter().find(|u| u.userid == user)
    }

    /// In entry order.
    pub fn iter(&self) -> std::slice::Iter<'_, User> {
        self.users.iter()
    }

    /// A copy, for going through it while changing the task.
    pub fn snapshot(&self) -> Vec<User> {
        self.users.clone()
    }
}

impl<'a> IntoIterator for &'a Roster {
    type Item = &'a User;
    type IntoIter = std::slice::Iter<'a, User>;

    fn into_iter(self) -> Self::IntoIter {
        self.users.iter()
    }
}
