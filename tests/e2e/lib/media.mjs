// Fake camera and microphone files, one pair per participant, made with
// GStreamer: a solid colour .y4m and a pure tone .wav. Colours and tones tell
// participants apart in the mix.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

const run = promisify(execFile);

/** ARGB colours and tones per participant; rgb is what the mix should show. */
export const PARTICIPANT_MEDIA = [
  { label: 'red', argb: '0xffff0000', rgb: [255, 0, 0], freq: 440 },
  { label: 'green', argb: '0xff00ff00', rgb: [0, 255, 0], freq: 660 },
  { label: 'blue', argb: '0xff0000ff', rgb: [0, 0, 255], freq: 990 },
  { label: 'yellow', argb: '0xffffff00', rgb: [255, 255, 0], freq: 1320 },
];

async function gst(args) {
  try {
    await run('gst-launch-1.0', ['-q', ...args], { timeout: 120000 });
  } catch (err) {
    throw new Error(`gst-launch-1.0 ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Returns {video, audio} file paths for `media` in `dir`, making them if missing. */
export async function makeMediaFiles(dir, media) {
  const video = path.join(dir, `${media.label}.y4m`);
  const audio = path.join(dir, `tone-${media.freq}.wav`);
  if (!existsSync(video) || statSync(video).size === 0) {
    await gst(['videotestsrc', 'pattern=solid-color', `foreground-color=${media.argb}`, 'num-buffers=60',
      '!', 'video/x-raw,width=640,height=360,framerate=30/1,format=I420', '!', 'y4menc', '!', 'filesink', `location=${video}`]);
  }
  if (!existsSync(audio) || statSync(audio).size === 0) {
    // 100 buffers of 1024 samples at 48 kHz: ~2.1 s, looped by Chromium.
    await gst(['audiotestsrc', `freq=${media.freq}`, 'num-buffers=100', '!', 'audio/x-raw,format=S16LE,rate=48000,channels=1',
      '!', 'wavenc', '!', 'filesink', `location=${audio}`]);
  }
  return { video, audio };
}
