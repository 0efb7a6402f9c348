"""The state store with the real binary: kill -9 at any moment loses no post.

Each daemon keeps its journal in its own directory (harness.Daemon sets store.dir), so a
restart of the same Daemon recovers it. Discord is the fake; PagerDuty is the signed
webhook sender. A post is told by its embed's title: "we are investigating" (notice),
": update" (acknowledgement, note), ": still investigating" (reminder), ": resolved".
"""

import random
import threading
import time
import unittest

import fake_discord as fd
import harness
import pagerduty


def kind_of(embed: dict) -> str:
    title = embed.get("title") or ""
    for suffix, kind in ((": we are investigating", "notice"), (": update", "update"),
                         (": still investigating", "update"),
                         (": resolved", "resolved"), (": the problem is back", "reopened")):
        if title.endswith(suffix):
            return kind
    return "other"


class StateRig(harness.DaemonWithDiscord):
    """A daemon posting #status only, reminders every `reminder`, paced fast."""

    def __init__(self, name: str, reminder: str = "1h"):
        super().__init__({"status": {"reminder_interval": reminder},
                          "notify": {"coalesce_window": "50ms", "drain_timeout": "2s"}},
                         name=name, operations_webhook=False)

    def kinds(self, inc: pagerduty.Incident) -> list[str]:
        return [kind_of(e) for e in self.embeds_for(inc)]

    def crash_and_restart(self) -> None:
        self.daemon.kill()  # SIGKILL
        if self.pd is not None:
            self.pd.close()
        self.start()

    def wait_delivered(self, key: str) -> None:
        """Until the daemon has the answer for `key`: a kill after it repeats nothing."""
        self.daemon.wait_log(lambda e: e.get("msg") == "post delivered" and e.get("key") == key, 10,
                             f"delivery of {key}", since=self.run_start)

    def start(self, env=None):
        self.run_start = len(self.daemon.snapshot_logs())
        return super().start(env)

    def wait_kinds(self, inc: pagerduty.Incident, want: dict, timeout: float = 15.0) -> list[str]:
        def enough():
            kinds = self.kinds(inc)
            return all(kinds.count(k) >= n for k, n in want.items()) and kinds
        return harness.wait_for(enough, timeout, f"posts {want} for {inc.id}", diagnostics=self.diagnostics)


class StateTests(unittest.TestCase):

    def rig(self, name: str, **kw) -> StateRig:
        rig = StateRig(name, **kw)
        self.addCleanup(rig.close)
        return rig.start()

    def test_a_restart_keeps_the_incident_its_acknowledgement_redelivery_and_resolve(self):
        rig = self.rig("keeps")
        inc = pagerduty.Incident()
        trigger = pagerduty.triggered(inc)
        self.assertEqual(rig.pd.send(trigger).status, 202)
        rig.wait_kinds(inc, {"notice": 1})
        rig.wait_delivered(f"{inc.id}/0/notice")
        rig.crash_and_restart()
        recovered = rig.daemon.wait_log(lambda e: e.get("msg") == "state recovered", 10, "state recovered",
                                        since=rig.run_start)
        self.assertEqual(recovered["open_incidents"], 1, recovered)
        # PagerDuty redelivers the trigger it saw answered before the crash: a duplicate.
        again = rig.pd.send(trigger)
        self.assertEqual((again.status, again.json().get("status")), (202, "duplicate"))
        # An acknowledgement posts nothing on #status (not a second notice, as a daemon
        # that forgot the incident would); a status update is relayed.
        self.assertEqual(rig.pd.send(pagerduty.acknowledged(inc)).status, 202)
        self.assertEqual(rig.pd.send(pagerduty.status_update_published(inc, "Rolling back")).status, 202)
        rig.wait_kinds(inc, {"update": 1})
        self.assertEqual(rig.pd.send(pagerduty.resolved(inc)).status, 202)
        kinds = rig.wait_kinds(inc, {"resolved": 1})
        self.assertEqual(sorted(kinds), ["notice", "resolved", "update"], rig.diagnostics())
        rig.daemon.assert_logs_well_formed()

    def test_posts_queued_while_discord_is_down_are_delivered_after_kill_9(self):
        rig = self.rig("outage")
        rig.discord.set_outage("503")
        incs = [rig.trigger() for _ in range(3)]
        harness.wait_for(lambda: len(rig.discord.execute_requests(rig.status_id)) >= 2, 10,
                         "attempts during the outage")
        rig.crash_and_restart()
        rig.discord.set_outage(None)
        for inc in incs:
            rig.wait_kinds(inc, {"notice": 1})
        time.sleep(0.5)  # a duplicate would come right behind
        for inc in incs:
            self.assertEqual(rig.kinds(inc), ["notice"], rig.diagnostics())

    def test_a_page_killed_right_after_its_202_is_posted_after_the_restart(self):
        rig = self.rig("after202")
        rig.discord.set_outage("503")  # nothing is sent before the kill: only the journal has it
        incs = []
        for _ in range(8):
            incs.append(rig.trigger())
            rig.crash_and_restart()
        rig.discord.set_outage(None)
        for inc in incs:
            rig.wait_kinds(inc, {"notice": 1})
        time.sleep(0.5)
        for inc in incs:
            self.assertEqual(rig.kinds(inc), ["notice"], rig.diagnostics())

    def test_a_page_killed_while_it_is_processed_is_posted_after_its_redelivery(self):
        """The kill lands before, during or after the journal write of the page and its
        notice: either both are kept (the redelivery is a duplicate, the notice goes out) or
        neither (the redelivery is new). Never the page without its notice."""
        rng = random.Random(int(time.time()))
        rig = self.rig("during")
        for _ in range(15):
            inc = pagerduty.Incident()
            trigger = pagerduty.triggered(inc)
            sender = pagerduty.Sender("127.0.0.1", rig.daemon.port, [rig.secret], timeout=5)
            thread = threading.Thread(target=lambda: self._send_quietly(sender, trigger))
            thread.start()
            time.sleep(rng.uniform(0.0, 0.008))
            rig.crash_and_restart()
            thread.join(timeout=10)
            sender.close()
            answer = harness.wait_for(lambda: (lambda r: r if r.status < 300 else None)(rig.pd.send(trigger)),
                                      10, "a 2xx to the redelivery")
            self.assertEqual(answer.status, 202)
            rig.wait_kinds(inc, {"notice": 1}, timeout=10)

    @staticmethod
    def _send_quietly(sender, payload) -> None:
        try:
            sender.send(payload)
        except Exception:  # the daemon was killed under it: PagerDuty redelivers
            pass

    def test_reminders_continue_on_their_schedule_and_a_missed_one_is_sent_once(self):
        rig = self.rig("reminders", reminder="3s")
        inc = rig.trigger()
        rig.wait_kinds(inc, {"notice": 1})
        rig.wait_delivered(f"{inc.id}/0/notice")
        rig.daemon.kill()
        time.sleep(7)  # two reminders were due meanwhile
        rig.start()
        rig.wait_kinds(inc, {"update": 1})
        time.sleep(1.0)
        self.assertEqual(rig.kinds(inc).count("update"), 1, "a missed reminder is sent once, not as a burst")
        rig.wait_kinds(inc, {"update": 2}, timeout=10)

    def test_kill_9_at_random_moments_loses_nothing(self):
        """Scripted incidents (trigger, acknowledge, status update, resolve) with SIGKILL at random points,
        Discord up, down or slow; each event is redelivered until answered 2xx, as PagerDuty
        does. The goal is 0 lost and at most one duplicate per crash; any loss fails."""
        rng = random.Random(int(time.time()))
        iterations = 50
        rig = self.rig("chaos")
        lost, duplicates, crashes = 0, 0, 0
        report = []
        for i in range(iterations):
            mode = ("up", "down", "slow")[i % 3]
            rig.discord.clear_script()
            rig.discord.set_outage("503" if mode == "down" else None)
            if mode == "slow":
                rig.discord.script(*[fd.slow(0.3) for _ in range(3)])
            inc = pagerduty.Incident()
            events = [pagerduty.triggered(inc), pagerduty.acknowledged(inc),
                      pagerduty.status_update_published(inc, "Rolling back"), pagerduty.resolved(inc)]
            kill_after = rng.randrange(len(events) + 1)  # events answered before the kill
            delay = rng.uniform(0.0, 0.05)
            for n, ev in enumerate(events):
                if n == kill_after:
                    time.sleep(delay)
                    rig.crash_and_restart()
                    crashes += 1
                    rig.discord.set_outage(None)
                self.assertEqual(rig.pd.send(ev).status, 202)
            if kill_after == len(events):
                time.sleep(delay)
                rig.crash_and_restart()
                crashes += 1
                rig.discord.set_outage(None)
            kinds = rig.wait_kinds(inc, {"notice": 1, "update": 1, "resolved": 1}, timeout=20)
            extra = len(kinds) - 3
            duplicates += max(0, extra)
            lost += sum(1 for k in ("notice", "update", "resolved") if k not in kinds)
            report.append((mode, kill_after, kinds))
        time.sleep(0.5)
        summary = f"{iterations} incidents, {crashes} crashes: {lost} lost, {duplicates} duplicated"
        print(summary)
        self.assertEqual(lost, 0, f"{summary}\n{report}")
        self.assertLessEqual(duplicates, crashes, f"{summary}\n{report}")


if __name__ == "__main__":
    unittest.main()
