/* The two-alternative forced-choice study page (SR3 Bench).
 *
 * index.html?plan=PAGE            served mode: each answer is posted to the server, and the next
 *                                trial is shown once the server has stored it
 * index.html?plan=PAGE&static=1   static mode (also from file://): answers kept in localStorage,
 *                                offered as a CSV at the end
 *
 * PAGE names the rater's plan, raters/PAGE.js, which sets window.STUDY: the study's display
 * settings, the rater, and per trial only its index, kind, task and image files (left, right,
 * lr), and for practice trials the real photograph's side (real_side, for the feedback); the
 * page never knows which method made an image, nor other raters' trials. An answer names the
 * files shown (left, right); the server, or the import of the static page's CSV, maps it
 * through the full plan, and refuses it when the files are not the plan's (another build).
 *
 * A reload resumes at the rater's next trial (from the server or from localStorage). The pair
 * is shown for display_ms, measured from the frame that first paints it to the frame that
 * hides it (requestAnimationFrame timestamps); the reaction time counts from the same onset.
 * An answer given while the pair is on screen hides it at the next frame, so that answer's
 * display_ms is shorter than the study's setting (it is what the rater saw).
 * document.body.dataset.state says where the page is: loading, intro, trial, pair (images
 * shown), choose (images hidden), saving, waiting (for the server), feedback, done, error.
 */
(function () {
  'use strict';

  // The answer's fields, also the static page's CSV columns (sr3bench.study.importing.CSV_COLUMNS).
  const CSV_COLUMNS = ['rater', 'session', 'trial', 'left', 'right', 'choice', 'reaction_ms', 'display_ms',
    'timestamp', 'user_agent'];
  const SIDE_KEYS = {ArrowLeft: 'left', f: 'left', F: 'left', ArrowRight: 'right', j: 'right', J: 'right'};
  const SECTIONS = ['intro', 'trial', 'done', 'error'];

  const params = new URLSearchParams(location.search);
  const page = params.get('plan');
  const staticMode = params.get('static') === '1' || location.protocol === 'file:';
  let study = null;
  let rater = null;
  const session = randomHex(16);
  const $ = (id) => document.getElementById(id);

  let trials = [];
  let position = 0;      // index of the rater's next trial
  let current = null;    // the trial on screen: {trial, onset, choice, reaction, display, timestamp}
  let onContinue = null; // what Space, Enter or the screen's button does (intro, feedback)

  function setState(state) {
    document.body.dataset.state = state;
  }

  function show(section) {
    for (const name of SECTIONS) $(name).hidden = name !== section;
  }

  function fail(message) {
    current = null;
    onContinue = null;
    $('error-message').textContent = message;
    show('error');
    setState('error');
  }

  function randomHex(length) {
    const bytes = crypto.getRandomValues(new Uint8Array(length / 2));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function fnv1a(text) { // a short fingerprint (32-bit FNV-1a) as 8 hex digits
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return hash.toString(16).toUpperCase().padStart(8, '0');
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const round1 = (ms) => Math.round(ms * 10) / 10;

  // Static mode: the rater's answers, in trial order, in localStorage.
  const storageKey = () => `sr3bench-study/${rater}/${fnv1a(JSON.stringify(trials))}`;
  const storedAnswers = () => JSON.parse(localStorage.getItem(storageKey()) || '[]');

  // Served mode: ask again until the server answers; a refusal (400) is final.
  async function request(url, options) {
    for (let wait = 500; ; wait = Math.min(2 * wait, 5000)) {
      let response = null;
      try {
        response = await fetch(url, {cache: 'no-store', ...options});
      } catch (error) { /* the server is unreachable: try again */ }
      if (response && (response.ok || response.status === 409)) {
        $('waiting').hidden = true;
        return response.json();
      }
      if (response && response.status >= 400 && response.status < 500) {
        const reply = await response.json().catch(() => ({}));
        throw new Error(reply.error || `the server answered ${response.status}`);
      }
      $('waiting').hidden = false;
      setState('waiting');
      await sleep(wait);
    }
  }

  function loadPlan() { // the rater's plan is a script (not fetched JSON), so that file:// pages load it too
    if (!/^[0-9a-f]{32}$/.test(page || '')) return fail('This link names no study plan: please open the link you were given.');
    const script = document.createElement('script');
    script.src = `raters/${page}.js`;
    script.onload = begin;
    script.onerror = () => fail('This link\'s study plan was not found: please open the link you were given.');
    document.body.append(script);
  }

  async function begin() {
    study = window.STUDY;
    if (!study || !Array.isArray(study.trials)) return fail('The study plan did not load: please reload the page.');
    rater = study.rater;
    trials = study.trials;
    try {
      position = staticMode ? storedAnswers().length : (await request(`api/state?plan=${page}`)).next_trial;
    } catch (error) {
      return fail(`The study could not start: ${error.message}`);
    }
    if (position >= trials.length) return finish();
    const practice = trials.filter((t) => t.kind === 'practice').length;
    $('intro-seconds').textContent = `${study.study.display_ms / 1000} seconds`;
    $('intro-question').textContent = study.study.questions[String(trials[0].task)];
    $('intro-count').textContent = String(trials.length);
    $('intro-practice').textContent = String(practice);
    $('intro-resume').hidden = position === 0;
    show('intro');
    setState('intro');
    onContinue = runTrial;
  }

  function loadImage(src) {
    const image = new Image();
    image.alt = '';
    image.src = src;
    return image.decode().then(() => image);
  }

  function clearBoxes() {
    for (const box of document.querySelectorAll('.box')) box.replaceChildren();
  }

  function sizeBoxes(image, count) { // the boxes take the image's size, shrunk to fit the window
    const room = (Math.min(innerWidth, 1400) - 48 - 24 * (count - 1)) / count;
    const scale = Math.min(1, room / image.naturalWidth, (innerHeight - 220) / image.naturalHeight);
    $('pair').style.setProperty('--box-width', `${Math.max(1, Math.floor(image.naturalWidth * scale))}px`);
    $('pair').style.setProperty('--box-height', `${Math.max(1, Math.floor(image.naturalHeight * scale))}px`);
  }

  async function runTrial() {
    onContinue = null;
    const trial = trials[position];
    const withInput = trial.task === 1; // task 1 shows the low-resolution input in the middle
    show('trial');
    setState('trial');
    $('feedback').hidden = true;
    $('trial').dataset.trial = String(trial.trial);
    $('question').textContent = study.study.questions[String(trial.task)];
    const practice = trials.filter((t) => t.kind === 'practice').length;
    $('progress').textContent = trial.kind === 'practice'
      ? `Practice ${trial.trial + 1} of ${practice}` : `Image ${trial.trial - practice + 1} of ${trials.length - practice}`;
    clearBoxes();
    $('lr-box').hidden = !withInput;
    let images;
    try {
      images = await Promise.all((withInput ? [trial.left, trial.right, trial.lr] : [trial.left, trial.right]).map(loadImage));
    } catch (error) {
      return fail('An image of this trial could not be loaded: please reload the page.');
    }
    sizeBoxes(images[0], images.length);
    $('left-box').append(images[0]);
    $('right-box').append(images[1]);
    if (withInput) $('lr-box').append(images[2]);
    const shown = {trial: trial, choice: null};
    current = shown;
    requestAnimationFrame((onset) => { // this frame paints the pair
      shown.onset = onset;
      if (!shown.choice) setState('pair');
      let previous = onset;
      const tick = (now) => { // hide in the frame nearest display_ms, or in the first one after an answer
        if (shown.choice || now - onset + (now - previous) / 2 >= study.study.display_ms) {
          clearBoxes();
          shown.display = now - onset;
          if (shown.choice) save(shown);
          else setState('choose');
        } else {
          previous = now;
          requestAnimationFrame(tick);
        }
      };
      requestAnimationFrame(tick);
    });
  }

  function choose(side, time) {
    const shown = current;
    if (!shown || shown.onset === undefined || shown.choice) return; // accepted once the pair is painted
    shown.choice = side;
    shown.reaction = Math.max(0, time - shown.onset);
    shown.timestamp = new Date().toISOString();
    setState('saving');
    if (shown.display !== undefined) save(shown); // else the next frame hides the pair, then saves
  }

  async function save(shown) {
    const t = shown.trial;
    const answer = {
      rater: rater, session: session, trial: t.trial, left: t.left, right: t.right, choice: shown.choice,
      reaction_ms: round1(shown.reaction), display_ms: round1(shown.display), timestamp: shown.timestamp,
      user_agent: navigator.userAgent,
    };
    try {
      if (staticMode) {
        const answers = storedAnswers();
        if (answers.length === t.trial) answers.push(answer);
        localStorage.setItem(storageKey(), JSON.stringify(answers));
        position = answers.length;
      } else {
        position = (await request('api/answer', {
          method: 'POST', headers: {'Content-Type': 'application/json', 'X-Study-Page': page},
          body: JSON.stringify(answer),
        })).next_trial;
      }
    } catch (error) {
      return fail(`Your answer could not be stored (${error.message}). Please tell the people running the study.`);
    }
    current = null;
    if (t.kind === 'practice') return feedback(shown);
    next();
  }

  function feedback(shown) {
    const photograph = shown.trial.real_side;
    $('feedback-text').textContent = `${shown.choice === photograph ? 'Correct' : 'Not quite'}: ` +
      `the photograph was on the ${photograph}.`;
    $('feedback').hidden = false;
    setState('feedback');
    onContinue = next;
  }

  function next() {
    onContinue = null;
    if (position < trials.length) runTrial();
    else finish();
  }

  function csvField(value) {
    const text = value === null || value === undefined ? '' : String(value);
    return `"${text.replace(/"/g, '""')}"`;
  }

  function finish() {
    show('done');
    if (staticMode) {
      const rows = storedAnswers().map((answer) => CSV_COLUMNS.map((c) => csvField(answer[c])).join(','));
      const csv = [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
      $('download').href = `data:text/csv;charset=utf-8,${encodeURIComponent(csv)}`;
      $('download').download = `answers-${rater}.csv`;
      $('code').textContent = `${rater}-${fnv1a(csv)}`;
      $('static-end').hidden = false;
    }
    setState('done');
  }

  addEventListener('keydown', (event) => {
    if (event.repeat || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === ' ' || event.key === 'Enter') {
      event.preventDefault();
      if (onContinue) onContinue();
    } else if (SIDE_KEYS[event.key]) {
      event.preventDefault();
      choose(SIDE_KEYS[event.key], event.timeStamp);
    }
  });
  for (const box of document.querySelectorAll('.box[data-side]')) {
    box.addEventListener('pointerdown', (event) => {
      if (event.button === 0) choose(box.dataset.side, event.timeStamp);
    });
  }
  $('start').addEventListener('click', () => onContinue && onContinue());
  $('continue').addEventListener('click', () => onContinue && onContinue());

  loadPlan();
})();
