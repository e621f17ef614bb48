-- The training curriculum (shared by every org) and each rep's progress through it.
CREATE TABLE curriculum_modules (
    id          text PRIMARY KEY,
    position    integer NOT NULL UNIQUE,
    title       text NOT NULL,
    summary     text NOT NULL,
    dimension   text NOT NULL CHECK (dimension IN ('opening_rapport', 'discovery', 'active_listening',
                                                   'value_articulation', 'objection_handling',
                                                   'closing_next_steps')),
    skills      text[] NOT NULL DEFAULT '{}',
    persona_ids text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE curriculum_progress (
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    module_id    text NOT NULL REFERENCES curriculum_modules (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'completed')),
    best_score   numeric(5, 2),
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (org_id, user_id, module_id)
);

ALTER TABLE curriculum_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY curriculum_progress_tenant ON curriculum_progress FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()));

GRANT SELECT ON curriculum_modules TO sparring_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON curriculum_progress TO sparring_app;

INSERT INTO curriculum_modules (id, position, title, summary, dimension, skills) VALUES
 ('cold-call-opening', 1, 'Cold-call opening',
  'Earn the next thirty seconds: who you are, why you are calling, and a permission question.',
  'opening_rapport', ARRAY['pattern interrupt', 'reason for the call', 'permission question']),
 ('discovery', 2, 'Discovery',
  'Ask open situation, problem and implication questions until the buyer names and sizes a pain.',
  'discovery', ARRAY['open questions', 'pain questions', 'implication questions', 'qualification']),
 ('active-listening', 3, 'Active listening',
  'Paraphrase, label and follow up in the buyer''s own words; let them finish.',
  'active_listening', ARRAY['paraphrasing', 'labelling', 'follow-up questions', 'talk ratio']),
 ('objection-handling', 4, 'Objection handling',
  'Acknowledge, isolate the real concern, answer with value, confirm it is resolved.',
  'objection_handling', ARRAY['acknowledge', 'clarify', 'respond with value', 'confirm']),
 ('value-articulation', 5, 'Value',
  'Tie each capability to a pain the buyer stated, with a proof point that fits their world.',
  'value_articulation', ARRAY['feature to benefit', 'proof points', 'short answers']),
 ('closing', 6, 'Closing and next steps',
  'Summarise, ask for a specific commitment, and leave with a date, a time and an owner.',
  'closing_next_steps', ARRAY['summarise', 'ask for commitment', 'dated next step', 'stakeholders']);
